/** CPU and RSS probes from /proc (Linux): docs/performance.md, "How the harness works". */
import { execFileSync } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  try {
    ticksPerSecond ??= Number.parseInt(execFileSync('getconf', ['CLK_TCK']).toString(), 10) || 100;
  } catch {
    ticksPerSecond = 100;
  }
  return ticksPerSecond;
}

/** ppid, CPU seconds, and CPU seconds of its reaped children (cutime + cstime); null if gone. */
export async function readStat(pid: number) {
  try {
    const text = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces and parentheses: fields from 3 (state) after the last ')'.
    const f = text
      .slice(text.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    const seconds = (a: number, b: number): number => (f[a]! + f[b]!) / clockTicks();
    return { ppid: f[1]!, cpuSeconds: seconds(11, 12), reapedChildrenCpuSeconds: seconds(13, 14) };
  } catch {
    return null;
  }
}

export async function rssBytes(pid: number): Promise<number | null> {
  try {
    const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return match ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

/**
 * CPU seconds of a process, or of it and its direct children (PostgreSQL's backends): the live
 * ones plus those reaped meanwhile (cutime/cstime), else the sum could shrink over a window.
 */
async function cpuSeconds(pid: number, withChildren: boolean): Promise<number | null> {
  const own = await readStat(pid);
  if (!own || !withChildren) return own?.cpuSeconds ?? null;
  let total = own.cpuSeconds + own.reapedChildrenCpuSeconds;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readStat(Number(entry));
    if (stat?.ppid === pid) total += stat.cpuSeconds;
  }
  return total;
}

/** Mean CPU (percent of one core) and RSS over the window until the returned call; null if gone. */
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

/** What `sampleUsage(…).stop()` returns; `othersCpuPercent`: the machine minus all the rest. */
export type UsageWindow = Awaited<ReturnType<Awaited<ReturnType<typeof sampleUsage>>['stop']>>;

/** Samples the server, PostgreSQL (with its backends), the clients and the machine until `stop()`. */
export async function sampleUsage(pids: {
  server: number;
  postmaster: number | null;
  clients: number[];
}) {
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
