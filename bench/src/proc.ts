/**
 * Process probes from /proc (Linux): CPU time from `/proc/<pid>/stat` (utime + stime, in clock
 * ticks) and resident memory from `/proc/<pid>/status` (VmRSS), sampled over a window for
 * everything involved: the server under test, PostgreSQL (postmaster and its backends), the bench's
 * client processes and the whole machine, so the CPU left over — other people's work on a shared
 * machine — is reported next to the result.
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
 * CPU seconds of a process, or of it and all its direct children (PostgreSQL's backends): the live
 * ones, plus those that exited meanwhile (a pool closing idle connections), which the parent's
 * cutime/cstime accumulate once reaped — else the sum could shrink over a window.
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

async function sampleProcess(pid: number, withChildren = false) {
  const startedAt = performance.now();
  const cpuStart = await cpuSeconds(pid, withChildren);
  const rssStart = (await rssBytes(pid)) ?? 0;
  let [rssMax, rssLast] = [rssStart, rssStart];
  const timer = setInterval(() => {
    void rssBytes(pid).then((rss) => {
      if (rss === null) return;
      rssLast = rss;
      rssMax = Math.max(rssMax, rss);
    });
  }, 1_000);
  // Mean CPU over the window (percent of one core) and RSS; null when the process is gone.
  return async () => {
    clearInterval(timer);
    const cpuEnd = await cpuSeconds(pid, withChildren);
    const rssEndBytes = (await rssBytes(pid)) ?? rssLast;
    if (cpuStart === null || cpuEnd === null) return null;
    const seconds = (performance.now() - startedAt) / 1000;
    return {
      cpuPercent: seconds > 0 ? ((cpuEnd - cpuStart) / seconds) * 100 : 0,
      rssStartBytes: rssStart,
      rssEndBytes,
      rssMaxBytes: Math.max(rssMax, rssEndBytes),
    };
  };
}

async function machineTicks(): Promise<{ busy: number; total: number }> {
  const line = (await readFile('/proc/stat', 'utf8')).split('\n')[0] ?? '';
  // cpu user nice system idle iowait irq softirq steal guest guest_nice
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] =
    line.trim().split(/\s+/).slice(1).map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy, total: busy + idle + iowait };
}

/**
 * CPU (percent of one core) and RSS over a window: the server, PostgreSQL, each client process
 * (generators, dashboards, agent hosts…), the machine, and the others' CPU (machine minus the rest;
 * null when one is unknown).
 */
export type UsageWindow = Awaited<ReturnType<Awaited<ReturnType<typeof sampleUsage>>['stop']>>;

export interface UsagePids {
  server: number;
  postmaster: number | null;
  clients: number[];
}

/** Samples the server, PostgreSQL, the clients and the whole machine until `stop()`. */
export async function sampleUsage(pids: UsagePids) {
  const started = performance.now();
  const server = await sampleProcess(pids.server);
  const postgres = pids.postmaster === null ? null : await sampleProcess(pids.postmaster, true);
  const clients = await Promise.all(pids.clients.map((pid) => sampleProcess(pid)));
  const machineStart = await machineTicks();
  return {
    async stop() {
      const serverUsage = await server();
      const postgresUsage = postgres ? await postgres() : null;
      const clientsCpuPercent = (await Promise.all(clients.map((c) => c()))).map(
        (u) => u?.cpuPercent ?? 0,
      );
      const end = await machineTicks();
      const total = end.total - machineStart.total;
      const machine =
        total > 0 ? ((end.busy - machineStart.busy) / total) * cpus().length * 100 : 0;
      const rss = await Promise.all(pids.clients.map((pid) => rssBytes(pid)));
      const known =
        (serverUsage?.cpuPercent ?? 0) +
        (postgresUsage?.cpuPercent ?? 0) +
        clientsCpuPercent.reduce((a, b) => a + b, 0);
      return {
        seconds: (performance.now() - started) / 1000,
        server: serverUsage,
        postgresCpuPercent: postgresUsage?.cpuPercent ?? null,
        clientsCpuPercent,
        clientsRssBytes: rss.every((r) => r !== null) ? rss.reduce((a, b) => a + b, 0) : null,
        machineCpuPercent: machine,
        othersCpuPercent: serverUsage && postgresUsage ? Math.max(0, machine - known) : null,
      };
    },
  };
}
