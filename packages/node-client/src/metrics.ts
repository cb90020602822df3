/**
 * Machine metrics for heartbeats, from node:os: CPU busy % since the previous sample (all cores,
 * 0–100), memory used/total, machine uptime. Custom gauges ride along (≤ 16, names
 * `^[a-z][a-z0-9_.]{0,63}$`, finite numbers), validated with the wire schema before sending.
 */
import os from 'node:os';
import { HeartbeatMetrics, TetherError } from '@tether/contracts';

export interface CpuTimes {
  idle: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  let idle = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const t = cpu.times;
    idle += t.idle;
    total += t.user + t.nice + t.sys + t.idle + t.irq;
  }
  return { idle, total };
}

export interface MetricsSource {
  cpuTimes(): CpuTimes;
  totalmem(): number;
  freemem(): number;
  uptime(): number;
}

const OS_SOURCE: MetricsSource = {
  cpuTimes,
  totalmem: () => os.totalmem(),
  freemem: () => os.freemem(),
  uptime: () => os.uptime(),
};

export class MetricsCollector {
  readonly #source: MetricsSource;
  #previous: CpuTimes;

  constructor(source: MetricsSource = OS_SOURCE) {
    this.#source = source;
    this.#previous = source.cpuTimes();
  }

  /** A snapshot; CPU % covers the time since the previous snapshot (or since construction). */
  collect(gauges?: Record<string, number>): HeartbeatMetrics {
    const now = this.#source.cpuTimes();
    const totalDelta = now.total - this.#previous.total;
    const idleDelta = now.idle - this.#previous.idle;
    this.#previous = now;
    const cpuPercent =
      totalDelta > 0
        ? Math.min(100, Math.max(0, (100 * (totalDelta - idleDelta)) / totalDelta))
        : 0;
    const total = this.#source.totalmem();
    const metrics: HeartbeatMetrics = {
      cpuPercent: Math.round(cpuPercent * 10) / 10,
      memoryUsedBytes: Math.max(0, total - this.#source.freemem()),
      memoryTotalBytes: total,
      uptimeSeconds: Math.max(0, Math.floor(this.#source.uptime())),
      ...(gauges && Object.keys(gauges).length > 0 ? { gauges } : {}),
    };
    return validateMetrics(metrics);
  }
}

/** Validates against the wire schema; a bad gauge is the caller's bug → request.invalid. */
export function validateMetrics(metrics: HeartbeatMetrics): HeartbeatMetrics {
  const parsed = HeartbeatMetrics.safeParse(metrics);
  if (!parsed.success) {
    throw new TetherError('request.invalid', `Invalid metrics: ${parsed.error.message}`, {
      issues: parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message })),
    });
  }
  return parsed.data;
}
