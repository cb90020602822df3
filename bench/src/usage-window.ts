/**
 * CPU and memory of everything involved, over one window: the server under test, PostgreSQL
 * (postmaster and its backends), the client processes (summed) and the whole machine, so the
 * CPU left over — other people's work on a shared machine — can be reported next to the result.
 */
import { rssBytes, sampleMachine, sampleProcess, type ProcessUsage } from './proc.js';

export interface UsageWindow {
  seconds: number;
  server: ProcessUsage | null;
  /** Percent of one core. */
  postgresCpuPercent: number | null;
  /** The client processes together, percent of one core. */
  clientsCpuPercent: number | null;
  /** The client processes' RSS summed, at the window's end. */
  clientsRssBytes: number | null;
  machineCpuPercent: number;
  /** Machine CPU minus server, PostgreSQL and clients. */
  othersCpuPercent: number | null;
}

export interface UsagePids {
  server: number | null;
  postmaster: number | null;
  clients: number[];
}

export async function sampleUsage(pids: UsagePids): Promise<{ stop(): Promise<UsageWindow> }> {
  const started = performance.now();
  const server = pids.server === null ? null : await sampleProcess(pids.server);
  const postgres = pids.postmaster === null ? null : await sampleProcess(pids.postmaster, true);
  const clients = await Promise.all(pids.clients.map((pid) => sampleProcess(pid)));
  const machine = await sampleMachine();
  return {
    async stop() {
      const serverUsage = server ? await server.stop() : null;
      const postgresUsage = postgres ? await postgres.stop() : null;
      const clientUsage = await Promise.all(clients.map((c) => c.stop()));
      const machineCpu = await machine.stop();
      const rss = await Promise.all(pids.clients.map((pid) => rssBytes(pid)));
      const clientsCpu = clientUsage.every((u) => u !== null)
        ? clientUsage.reduce((sum, u) => sum + u.cpuPercent, 0)
        : null;
      const known = [serverUsage?.cpuPercent, postgresUsage?.cpuPercent, clientsCpu];
      return {
        seconds: (performance.now() - started) / 1000,
        server: serverUsage,
        postgresCpuPercent: postgresUsage?.cpuPercent ?? null,
        clientsCpuPercent: clientsCpu,
        clientsRssBytes: rss.every((r) => r !== null) ? rss.reduce((a, b) => a + b, 0) : null,
        machineCpuPercent: machineCpu,
        othersCpuPercent: known.every((v) => v !== null && v !== undefined)
          ? Math.max(0, machineCpu - known.reduce<number>((a, b) => a + (b ?? 0), 0))
          : null,
      };
    },
  };
}
