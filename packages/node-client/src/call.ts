/**
 * One call on one connection, as the node's state machine makes it: the server's refusal comes
 * back as a `TetherError`; a socket that goes first (closed, failed under the call, or the call
 * past its deadline, which drops the connection) as `ConnectionLost` with the loss's cause.
 */
import type { TetherError } from '@tether/contracts';
import { isTransportError, toTetherError, transportError } from './errors.js';
import { processScheduler, type ScheduledTask } from './scheduler.js';
import type { Connection, LossCause } from './transport.js';

/**
 * Thrown inside a connection's steps when its socket is gone. Control flow, not a bug: it
 * carries no stack (a reconnect wave loses thousands of calls at once, and capturing a stack for
 * each was a visible share of a simulator's CPU).
 */
export class ConnectionLost extends Error {
  readonly loss: LossCause;
  constructor(loss: LossCause) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`connection lost (${loss.kind})`);
    Error.stackTraceLimit = limit;
    this.loss = loss;
  }
}

/**
 * A call on `conn`: TetherError on refusal, ConnectionLost if the socket goes first or the call
 * outlives `timeoutMs` (which drops the connection). It listens for the loss only while in
 * flight (`conn.onLost`), and its deadline is on the process's shared scheduler, not a Node
 * timer per call: a process may run thousands of nodes, each with a call in flight.
 */
export function callOn<T>(conn: Connection, timeoutMs: number, call: () => Promise<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let done = false;
    let stopListening = (): void => undefined;
    const timer: ScheduledTask = processScheduler().schedule(timeoutMs, () => {
      if (!settle()) return;
      const cause: LossCause = { kind: 'dropped', reason: 'a call timed out' };
      conn.lose(cause);
      reject(new ConnectionLost(cause));
    });
    const settle = (): boolean => {
      if (done) return false;
      done = true;
      timer.cancel();
      stopListening();
      return true;
    };
    stopListening = conn.onLost((cause) => {
      if (settle()) reject(new ConnectionLost(cause));
    });
    if (done) return;
    let pending: Promise<T>;
    try {
      pending = call();
    } catch (raw) {
      pending = Promise.reject(toTetherError(raw));
    }
    pending.then(
      (value) => {
        if (settle()) resolve(value);
      },
      (raw: unknown) => {
        if (!settle()) return;
        const error = toTetherError(raw);
        if (!isTransportError(error)) return reject(error);
        // The socket failed under the call: the connection is over, say so precisely.
        conn.lose({ kind: 'dropped', reason: error.message });
        reject(new ConnectionLost(conn.lostCause ?? { kind: 'dropped', reason: error.message }));
      },
    );
  });
}

/** What a caller of the public API sees of a failed call: a lost connection is a transport error. */
export function publicError(raw: unknown): TetherError {
  if (raw instanceof ConnectionLost) {
    return transportError(
      `The connection was lost (${raw.loss.kind}); not confirmed by the server.`,
    );
  }
  return toTetherError(raw);
}
