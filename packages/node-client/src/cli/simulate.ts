/** `tether-agent simulate`: N simulated nodes in this process, a status line every interval. */
import { access, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { DEVICE_ENROLL_BATCH_MAX } from '@tether/contracts';
import { loadCredentialsList, saveCredentialsList, type NodeCredentials } from '../credentials.js';
import type { LoopDelay, Outage, SimEvent, SimStatus, Simulation } from '../simulate-types.js';
import { startSimulation } from '../simulate.js';
import {
  UsageError,
  cancellable,
  capabilities,
  enrollmentKey,
  err,
  httpUrl,
  out,
  parse,
  positiveInt,
  positiveNumber,
  required,
  uuid,
  version,
} from './common.js';

function statusLine(s: SimStatus, loop?: LoopDelay): string {
  return (
    `t=${(s.elapsedMs / 1000).toFixed(1)}s nodes=${s.total} enrolled=${s.enrolled}/${s.total} ` +
    `connected=${s.connected} attached=${s.attached} online=${s.online} degraded=${s.degraded} ` +
    `reconnects=${s.reconnects} deferred=${s.deferrals} connect_errors=${s.connectErrors} ` +
    `terminated=${s.terminated}` +
    (loop ? ` ${loopText(loop)}` : '')
  );
}

/** This process's event-loop delay: how late its nodes may see and time their events. */
function loopText(loop: LoopDelay): string {
  return `loop_delay_ms p50=${loop.p50Ms} p99=${loop.p99Ms} max=${loop.maxMs}`;
}

function outageLine(o: Outage, startedAt: number): string {
  const t = (at: number | null): string =>
    at === null ? '-' : `${((at - startedAt) / 1000).toFixed(1)}s`;
  return (
    `outage: lost at t=${t(o.from)} (min online ${o.minOnline}), first back t=${t(o.firstBackAt)}, ` +
    `all back t=${t(o.to)}: reconnect first→last ${o.reconnectMs ?? '-'} ms, ` +
    `spread p50=${o.spread.p50 ?? '-'} p95=${o.spread.p95 ?? '-'} ms, outage ${o.durationMs ?? '-'} ms`
  );
}

/** `simulate --identities PATH`: the saved identities, or none when the file does not exist. */
async function loadIdentities(path: string): Promise<NodeCredentials[]> {
  try {
    await access(path);
  } catch {
    return [];
  }
  return loadCredentialsList(path);
}

export async function simulateCommand(args: string[]): Promise<number> {
  const { values } = parse(args, {
    url: { type: 'string' },
    count: { type: 'string' },
    session: { type: 'string' },
    key: { type: 'string' },
    identities: { type: 'string' },
    churn: { type: 'boolean' },
    'churn-interval': { type: 'string' },
    capability: { type: 'string', multiple: true },
    'node-version': { type: 'string' },
    ramp: { type: 'string' },
    duration: { type: 'string' },
    interval: { type: 'string' },
    report: { type: 'string' },
    batch: { type: 'string' },
    'until-online': { type: 'boolean' },
  });
  const url = httpUrl(values.url, '--url');
  const count = positiveInt(required(values.count, '--count'), '--count')!;
  // Without --session the nodes only beat (presence), as `run` without --session.
  const sessionId = values.session === undefined ? undefined : uuid(values.session, '--session');
  const durationS = positiveNumber(values.duration, '--duration');
  const intervalS = positiveNumber(values.interval, '--interval') ?? 5;
  const churnS = positiveNumber(values['churn-interval'], '--churn-interval');
  const rampS = positiveNumber(values.ramp, '--ramp');
  const nodeVersion = version(values['node-version'], '--node-version');
  const caps = capabilities(values.capability);
  const identities = values.identities ? await loadIdentities(values.identities) : [];
  const key = identities.length >= count ? undefined : enrollmentKey(values.key);
  const batch = positiveInt(values.batch, '--batch');
  if (batch !== undefined && batch > DEVICE_ENROLL_BATCH_MAX) {
    throw new UsageError(`--batch must be at most ${DEVICE_ENROLL_BATCH_MAX}`);
  }
  const events: SimEvent[] | undefined = values.report ? [] : undefined;
  let firstTermination: string | undefined;
  // Identity saves are chained: each writes the whole list, and never two at once.
  let saving = Promise.resolve();
  const saveIdentities = (path: string): Promise<void> =>
    (saving = saving.then(() => saveCredentialsList(path, identities)));

  let simulation: Simulation | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const cpuAtStart = process.cpuUsage();
  return cancellable('simulation', async (signal, signalled) => {
    try {
      const reused = Math.min(identities.length, count);
      out(`simulate: ${count} nodes against ${url} (${reused} saved, ${count - reused} to enroll)`);
      const started = Date.now();
      let outagesShown = 0;
      const showOutages = (outages: Outage[], startedAt: number): void => {
        for (
          ;
          outagesShown < outages.length && outages[outagesShown]!.to !== null;
          outagesShown++
        ) {
          out(outageLine(outages[outagesShown]!, startedAt));
        }
      };
      const t = (): string => `t=${((Date.now() - started) / 1000).toFixed(1)}s`;
      let enrolledSoFar = reused;
      ticker = setInterval(() => {
        if (!simulation) {
          out(`${t()} enrolling: enrolled=${enrolledSoFar}/${count}`);
          return;
        }
        // The loop delay of this status line's interval.
        out(statusLine(simulation.status(), simulation.loopDelay({ reset: true })));
        showOutages(simulation.summary().outages, simulation.startedAt);
      }, intervalS * 1000);
      simulation = await startSimulation({
        url,
        ...(sessionId !== undefined ? { sessionId } : {}),
        count,
        identities,
        ...(key !== undefined ? { enrollmentKey: key } : {}),
        ...(values.identities
          ? {
              // Saved as they come, so an interrupted enrollment is not repeated next time.
              onEnrolled: (credentials: NodeCredentials) => {
                identities.push(credentials);
                saveIdentities(values.identities!).catch((error: unknown) =>
                  err(`tether-agent: could not save identities: ${String(error)}`),
                );
              },
            }
          : {}),
        ...(batch !== undefined ? { enrollBatchSize: batch } : {}),
        onEnrollProgress: (enrolled) => {
          if (enrolled === enrolledSoFar) return;
          enrolledSoFar = enrolled;
          out(`${t()} enrolled=${enrolled}/${count}`);
        },
        onEnrollWait: ({ waitMs, code }) =>
          out(
            `${t()} enrolling: ${code === 'rate_limited' ? 'rate limited by the server' : code}, waiting ${(waitMs / 1000).toFixed(1)} s (enrolled=${enrolledSoFar}/${count})`,
          ),
        churn: churnS !== undefined ? { meanIntervalMs: churnS * 1000 } : (values.churn ?? false),
        signal,
        onEvent: (event) => {
          events?.push(event);
          if (event.type === 'terminated') firstTermination ??= event.cause;
        },
        ...(rampS !== undefined ? { rampMs: rampS * 1000 } : {}),
        ...(nodeVersion !== undefined ? { nodeVersion } : {}),
        ...(Object.keys(caps).length > 0 ? { capabilities: caps } : {}),
      });
      if (values.identities) await saveIdentities(values.identities);
      out(`simulate: run ${simulation.runId}: ${count} nodes started`);
      const ended: Promise<unknown>[] = [
        signalled.then((name) => out(`${name}: stopping the simulation...`)),
      ];
      if (durationS !== undefined) {
        ended.push(sleep(durationS * 1000, undefined, { ref: false }));
      }
      if (values['until-online']) {
        ended.push(
          simulation
            .waitUntil((status) => status.online === count, 2_147_483_647)
            .then(() => out(`all ${count} nodes online: stopping the simulation...`)),
        );
      }
      await Promise.race(ended);
      clearInterval(ticker);
      out(statusLine(simulation.status(), simulation.loopDelay({ reset: true })));
      const summary = simulation.summary();
      const cpu = process.cpuUsage(cpuAtStart);
      const cpuPercent = ((cpu.user + cpu.system) / 1e3 / (Date.now() - started)) * 100;
      const rss = process.memoryUsage.rss();
      await simulation.stop();
      showOutages(summary.outages, simulation.startedAt);
      out(
        `summary: time_to_all_online=${summary.timeToAllOnlineMs ?? 'never'}ms ` +
          `reconnects=${summary.status.reconnects} deferred=${summary.status.deferrals} ` +
          `connect_errors=${summary.status.connectErrors} ` +
          `reconnect_downtime_ms p50=${summary.reconnectDowntime.p50 ?? '-'} ` +
          `p95=${summary.reconnectDowntime.p95 ?? '-'} max=${summary.reconnectDowntime.max ?? '-'}`,
      );
      out(
        `process: ${loopText(summary.loopDelay)} cpu=${cpuPercent.toFixed(1)}% of a core ` +
          `rss=${(rss / 2 ** 20).toFixed(0)}MB (${(rss / 1024 / count).toFixed(0)}KB/node)`,
      );
      if (values.report) {
        await writeFile(values.report, JSON.stringify({ summary, events }, null, 1));
        out(`report written to ${values.report}`);
      }
      if (summary.status.terminated === 0) return 0;
      err(
        `${summary.status.terminated} nodes stopped for good (first: ${firstTermination ?? '?'})`,
      );
      return 1;
    } finally {
      clearInterval(ticker);
      await simulation?.stop();
    }
  });
}
