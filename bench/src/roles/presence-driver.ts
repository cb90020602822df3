/**
 * The presence driver (docs/performance.md, "Presence latency"): changes nodes' presence on a
 * steady schedule over WebSocket and logs when it did each change, the latencies' reference.
 */
import type { Health, PresenceChange } from '../delivery.js';
import { preciseNow, sleepUntil } from '../ipc.js';
import { HEARTBEAT, settleOnce, WsTransport, type NodeIdentity } from '../wire.js';

/** Flip: `changes` beats at `rate`/s; churn: per node an open (`rate`/s), a close `holdMs` later. */
export interface DriverSpec {
  mode: 'flip' | 'churn';
  baseUrl: string;
  nodes: NodeIdentity[];
  changes: number;
  rate: number;
  holdMs: number;
  requestTimeoutMs: number;
}

export type DriverReport = Awaited<ReturnType<typeof handlers.run>>;

let spec: DriverSpec;
let transport: WsTransport;
const changes: PresenceChange[] = [];
const failures: string[] = [];
let lagMaxMs = 0;
/** Flip turns skipped (the node's previous change unanswered). */
let skipped = 0;
/** Each node's health after the driver's last successful change. */
let final: Health[] = [];

function failure(message: string): void {
  if (failures.length < 5) failures.push(message);
}

/** Sleeps until `due`, then notes how late it woke. */
async function at(due: number): Promise<void> {
  await sleepUntil(due);
  lagMaxMs = Math.max(lagMaxMs, preciseNow() - due);
}

/** Logs a change made now (not yet `ok`). */
function change(node: number, health: Health, cause: string | null): PresenceChange {
  const made: PresenceChange = { node, health, at: preciseNow(), cause, ok: false, ackMs: null };
  changes.push(made);
  return made;
}

/** A beat that must be answered within the request timeout; resolves with the error, if any. */
function beat(node: number, healthState: Health): Promise<string | null> {
  return new Promise((resolve) => {
    const settle = settleOnce<string | null>(resolve, spec.requestTimeoutMs, 'timeout');
    const { nodeId } = spec.nodes[node]!;
    if (!transport.send(node, HEARTBEAT, { nodeId, healthState }, settle)) settle('not_connected');
  });
}

/** Change i, due at start + i / rate, flips node i mod n; a node never has two in flight. */
async function flip(startAt: number): Promise<void> {
  final = spec.nodes.map(() => 'online');
  const busy = spec.nodes.map(() => false);
  const pending: Promise<void>[] = [];
  for (let i = 0; i < spec.changes; i++) {
    await at(startAt + (i * 1000) / spec.rate);
    const node = i % spec.nodes.length;
    if (busy[node]) {
      skipped++;
      continue;
    }
    const made = change(node, final[node] === 'online' ? 'degraded' : 'online', 'heartbeat');
    busy[node] = true;
    const done = beat(node, made.health).then((error) => {
      busy[node] = false;
      made.ackMs = preciseNow() - made.at;
      if (error === null) {
        made.ok = true;
        final[node] = made.health;
      } else {
        made.error = error;
        failure(`${spec.nodes[node]!.nodeId}: beat ${error}`);
      }
    });
    pending.push(done);
  }
  await Promise.all(pending);
}

/** Node i opens at start + i / rate and closes `holdMs` later. */
async function churn(startAt: number): Promise<void> {
  const lifecycles = spec.nodes.map(async ({ nodeId }, i) => {
    const due = startAt + (i * 1000) / spec.rate;
    await at(due);
    // Usually cause `connection` (the bind), but the first beat may commit first (`heartbeat`).
    const opened = change(i, 'online', null);
    const error = await transport.openOne(i);
    opened.ackMs = preciseNow() - opened.at;
    if (error !== null) {
      opened.error = error;
      return failure(`${nodeId}: open ${error}`);
    }
    opened.ok = true;
    await at(due + spec.holdMs);
    const closed = change(i, 'offline', 'connection');
    closed.ok = transport.closeOne(i, 'bench churn');
    if (!closed.ok) {
      closed.error = 'socket already closed';
      failure(`${nodeId}: socket closed before its turn`);
    }
  });
  await Promise.all(lifecycles);
  final = spec.nodes.map(() => 'offline');
}

export const handlers = {
  /** Flip mode connects every node up front; churn mode connects them on schedule. */
  async init(driver: DriverSpec): Promise<{ opened: number }> {
    spec = driver;
    const { baseUrl, nodes, requestTimeoutMs } = spec;
    transport = new WsTransport({
      ...{ baseUrl, nodes, requestTimeoutMs },
      ...{ connectConcurrency: 32, httpMaxSockets: 1 },
    });
    return spec.mode === 'churn' ? { opened: 0 } : transport.connect();
  },
  /** Runs the schedule from `startAt`; resolves once every change has been answered. */
  async run(startAt: number) {
    await (spec.mode === 'flip' ? flip(startAt) : churn(startAt));
    return { changes, final, skipped, failures, lagMaxMs };
  },
  close: () => transport?.close(),
};
