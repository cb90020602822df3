/**
 * One call on one connection, as the node's state machine makes it: the server's refusal comes
 * back as a `TetherError`; a socket that goes first (closed, failed under the call, or the call
 * past its deadline, which drops the connection) as `ConnectionLost` with the loss's cause.
 */
import type { TetherError } from '@tether/contracts';
import { isTransportError, toTetherError, transportError } from './errors.js';
import { processScheduler, type ScheduledTask } from './scheduler.js';
import type { Connection, LossCause } from './transport.js';

/** Thrown inside a connection's steps when its socket is gone. */
export class ConnectionLost extends Error {
  constructor(readonly loss: LossCause) {
    super(`connection lost (${loss.kind})`);
  }
}

/** A call on `conn`: TetherError on refusal, ConnectionLost if the socket goes first. */
export async function callOn<T>(
  conn: Connection,
  timeoutMs: number,
  call: () => Promise<T>,
): Promise<T> {
  const lost = conn.lost.then((cause) => Promise.reject(new ConnectionLost(cause)));
  lost.catch(() => undefined);
  let timer: ScheduledTask | undefined;
  // On the process's shared scheduler, not a Node timer per call: a process may run thousands
  // of nodes, each with a call in flight.
  const timeout = new Promise<never>((_, reject) => {
    timer = processScheduler().schedule(timeoutMs, () => {
      const cause: LossCause = { kind: 'dropped', reason: 'a call timed out' };
      conn.lose(cause);
      reject(new ConnectionLost(cause));
    });
  });
  try {
    return await Promise.race([
      call().catch((raw: unknown) => {
        const error = toTetherError(raw);
        // The socket failed under the call: the connection is over, say so precisely.
        if (isTransportError(error)) {
          conn.lose({ kind: 'dropped', reason: error.message });
          return Promise.reject(
            new ConnectionLost(conn.lostCause ?? { kind: 'dropped', reason: error.message }),
          );
        }
        return Promise.reject(error);
      }),
      lost,
      timeout,
    ]);
  } finally {
    timer?.cancel();
  }
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
