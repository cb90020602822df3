/**
 * The presence driver (docs/performance.md, "Presence latency"): changes nodes' presence on a
 * steady schedule over WebSocket and logs when it did each change, the latencies' reference.
 */
import type { Health, PresenceChange } from '../delivery.js';
import { preciseNow, sleepUntil } from '../ipc.js';
import { HEARTBEAT, settleOnce, WsTransport, type NodeIdentity } from '../wire.js';

export interface DriverSpec {
  mode: 'flip' | 'churn';
  baseUrl: string;
  nodes: NodeIdentity[];
  /** Flip: changes to make; churn: one open/close pair per node. */
  changes: number;
  /** Changes (flip) or opens (churn) per second. */
  rate: number;
  /** Churn: how long a socket stays open before it is closed. */
  holdMs: number;
  requestTimeoutMs: number;
}

/** The changes made, flip turns skipped, the first failures, how late the driver acted (ms). */
export type DriverReport = Awaited<ReturnType<typeof handlers.run>>;

let spec: DriverSpec;
let transport: WsTransport;
const changes: PresenceChange[] = [];
const failures: string[] = [];
let lagMaxMs = 0;

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
async function flip(startAt: number): Promise<number> {
  const health: Health[] = spec.nodes.map(() => 'online');
  const busy = spec.nodes.map(() => false);
  const pending: Promise<void>[] = [];
  let skipped = 0;
  for (let i = 0; i < spec.changes; i++) {
    await at(startAt + (i * 1000) / spec.rate);
    const node = i % spec.nodes.length;
    if (busy[node]) {
      skipped++;
      continue;
    }
    const made = change(node, health[node] === 'online' ? 'degraded' : 'online', 'heartbeat');
    busy[node] = true;
    const done = beat(node, made.health).then((error) => {
      busy[node] = false;
      made.ackMs = preciseNow() - made.at;
      if (error === null) {
        made.ok = true;
        health[node] = made.health;
      } else {
        made.error = error;
        failure(`${spec.nodes[node]!.nodeId}: beat ${error}`);
      }
    });
    pending.push(done);
  }
  await Promise.all(pending);
  return skipped;
}

/** Node i opens at start + i / rate and closes `holdMs` later. */
async function churn(startAt: number): Promise<number> {
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
  return 0;
}

export const handlers = {
  /** Flip mode connects every node up front; churn mode connects them on schedule. */
  async init(driver: DriverSpec): Promise<{ opened: number; failures: string[] }> {
    spec = driver;
    const { baseUrl, nodes, requestTimeoutMs } = spec;
    transport = new WsTransport({
      ...{ baseUrl, nodes, requestTimeoutMs },
      ...{ connectConcurrency: 32, httpMaxSockets: 1 },
    });
    if (spec.mode === 'churn') return { opened: 0, failures: [] };
    const { opened, failures } = await transport.connect();
    return { opened, failures };
  },
  /** Runs the schedule from `startAt`; resolves once every change has been answered. */
  async run(startAt: number) {
    const skipped = spec.mode === 'flip' ? await flip(startAt) : await churn(startAt);
    return { changes, skipped, failures, lagMaxMs };
  },
  close: () => transport?.close(),
};
