/**
 * An agent-host child process (see protocol.ts): runs its slice of the fleet — SDK daemons or
 * raw agents — reports counts every 250 ms, and per-agent times when asked.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { FleetTracker } from './tracker.js';
import type { FromHost, ToHost } from './protocol.js';
import { createRawFleet } from './raw-fleet.js';
import { createSdkFleet, type AgentFleet } from './sdk-fleet.js';

const STATUS_EVERY_MS = 250;

// This process's own event-loop delay, reset at the mark: thousands of agents reconnecting at
// once keep a host busy, and a late loop delays the agents' timestamps and timers alike.
const loopDelay = monitorEventLoopDelay({ resolution: 20 });
loopDelay.enable();

function reply(message: FromHost): void {
  process.send?.(message);
}

let tracker: FleetTracker | null = null;
let fleet: AgentFleet | null = null;
let statusTimer: NodeJS.Timeout | undefined;

async function exit(): Promise<never> {
  clearInterval(statusTimer);
  // Sockets closed without detaching: the server sees daemons going away, not leaving.
  await Promise.race([
    fleet?.stop() ?? Promise.resolve(),
    new Promise((resolve) => setTimeout(resolve, 5_000).unref()),
  ]);
  process.exit(0);
}

process.on('message', (message: ToHost) => {
  try {
    switch (message.type) {
      case 'init': {
        const { spec, startAt } = message;
        const t = new FleetTracker(spec.agents.length);
        const f = (spec.kind === 'sdk' ? createSdkFleet : createRawFleet)(spec, t);
        tracker = t;
        fleet = f;
        // Cold start, closed loop: each agent that comes online lets the next one start, so at
        // most `connectConcurrency` are connecting at once, at whatever pace the server keeps.
        let next = 0;
        const startNext = (): void => {
          if (next < spec.agents.length) f.start(next++);
        };
        t.onFirstOnline = startNext;
        setTimeout(
          () => {
            for (let k = 0; k < spec.connectConcurrency; k++) startNext();
          },
          Math.max(0, startAt - Date.now()),
        );
        statusTimer = setInterval(
          () => reply({ type: 'status', status: t.status() }),
          STATUS_EVERY_MS,
        );
        break;
      }
      case 'mark':
        tracker?.mark(message.at);
        loopDelay.reset();
        break;
      case 'report':
        if (!tracker) throw new Error('report before init');
        reply({
          type: 'report',
          report: tracker.report(message.refs, process.memoryUsage.rss(), {
            p50Ms: loopDelay.percentile(50) / 1e6,
            p99Ms: loopDelay.percentile(99) / 1e6,
            maxMs: loopDelay.max / 1e6,
          }),
        });
        break;
      case 'exit':
        void exit();
        break;
    }
  } catch (error) {
    reply({ type: 'fatal', message: error instanceof Error ? error.message : String(error) });
  }
});

// The orchestrator going away must not leave thousands of reconnecting agents behind.
process.on('disconnect', () => process.exit(0));
