/**
 * Process probes from /proc (Linux): CPU time from `/proc/<pid>/stat` (utime + stime, in clock
 * ticks) and resident memory from `/proc/<pid>/status` (VmRSS). A sampler reads them once a
 * second over a measurement window; CPU is reported in percent of one core (a process can
 * exceed 100 % with its helper threads).
 */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number.parseInt(execFileSync('getconf', ['CLK_TCK']).toString(), 10) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

interface StatLine {
  ppid: number;
  cpuSeconds: number;
  /** CPU of its children that have exited and been waited for (cutime + cstime). */
  reapedChildrenCpuSeconds: number;
}

async function readStat(pid: number): Promise<StatLine | null> {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses: split after the last ')'.
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state): ppid is field 4, utime 14, stime 15, cutime 16, cstime 17.
    const ppid = Number(fields[1]);
    const ticks = Number(fields[11]) + Number(fields[12]);
    const reaped = Number(fields[13]) + Number(fields[14]);
    return {
      ppid,
      cpuSeconds: ticks / clockTicks(),
      reapedChildrenCpuSeconds: reaped / clockTicks(),
    };
  } catch {
    return null;
  }
}

export async function rssBytes(pid: number): Promise<number | null> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of a process, or of it and all its direct children (PostgreSQL's backends): the
 * live ones, plus those that exited meanwhile (a pool closing idle connections), which the
 * parent's cutime/cstime accumulate once reaped — else the sum could shrink over a window.
 */
async function cpuSeconds(pid: number, withChildren: boolean): Promise<number | null> {
  const own = await readStat(pid);
  if (!own) return null;
  if (!withChildren) return own.cpuSeconds;
  let total = own.cpuSeconds + own.reapedChildrenCpuSeconds;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readStat(Number(entry));
    if (stat?.ppid === pid) total += stat.cpuSeconds;
  }
  return total;
}

export interface ProcessUsage {
  /** Mean CPU over the window, percent of one core. */
  cpuPercent: number;
  rssStartBytes: number;
  rssEndBytes: number;
  rssMaxBytes: number;
}

export interface Sampler {
  stop(): Promise<ProcessUsage | null>;
}

export async function sampleProcess(pid: number, withChildren = false): Promise<Sampler> {
  const startedAt = performance.now();
  const cpuStart = await cpuSeconds(pid, withChildren);
  const rssStart = (await rssBytes(pid)) ?? 0;
  let rssMax = rssStart;
  let rssLast = rssStart;
  const timer = setInterval(() => {
    void rssBytes(pid).then((rss) => {
      if (rss === null) return;
      rssLast = rss;
      if (rss > rssMax) rssMax = rss;
    });
  }, 1_000);
  return {
    async stop() {
      clearInterval(timer);
      const cpuEnd = await cpuSeconds(pid, withChildren);
      const rssEnd = (await rssBytes(pid)) ?? rssLast;
      if (cpuStart === null || cpuEnd === null) return null;
      const seconds = (performance.now() - startedAt) / 1000;
      return {
        cpuPercent: seconds > 0 ? ((cpuEnd - cpuStart) / seconds) * 100 : 0,
        rssStartBytes: rssStart,
        rssEndBytes: rssEnd,
        rssMaxBytes: Math.max(rssMax, rssEnd),
      };
    },
  };
}

async function machineTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy =
    (user ?? 0) + (nice ?? 0) + (system ?? 0) + (irq ?? 0) + (softirq ?? 0) + (steal ?? 0);
  return { busy, total: busy + (idle ?? 0) + (iowait ?? 0) };
}

/** Busy CPU of the whole machine over a window, in percent of one core (2 cores: 0–200). */
export async function sampleMachine(): Promise<{ stop(): Promise<number> }> {
  const start = await machineTicks();
  const cores = cpus().length;
  return {
    async stop() {
      const end = await machineTicks();
      const total = end.total - start.total;
      return total > 0 ? ((end.busy - start.busy) / total) * cores * 100 : 0;
    },
  };
}
