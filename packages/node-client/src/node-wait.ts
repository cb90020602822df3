/**
 * Waiting for a node's state: `waitFor` (a promise) and `states` (an async iterator), both built
 * on the node's public `state` and `on('state')` only. Neither ever outlives a final state: once
 * the node is stopped or terminated, a wait for another state rejects and the iterator ends.
 */
import type { NodeConnectionState, TetherNode } from './node-types.js';

/** States a node never leaves. */
export const FINAL_STATES: readonly NodeConnectionState[] = ['stopped', 'terminated'];

/** What the helpers read of a node. */
type Watched = Pick<TetherNode, 'state' | 'termination' | 'on'>;

function finalStateError(node: Watched, wanted: readonly NodeConnectionState[]): Error {
  const why = node.termination ? `: ${node.termination.message}` : '';
  return new Error(`node is ${node.state}${why} (waiting for ${wanted.join('|')})`);
}

/** `TetherNode.waitFor`: resolves when the state is one of `states` (at once if it already is). */
export async function waitForState(
  node: Watched,
  states: NodeConnectionState | readonly NodeConnectionState[],
  options: { timeoutMs?: number; signal?: AbortSignal } = {},
): Promise<NodeConnectionState> {
  const wanted: readonly NodeConnectionState[] = typeof states === 'string' ? [states] : states;
  if (wanted.includes(node.state)) return node.state;
  if (FINAL_STATES.includes(node.state)) throw finalStateError(node, wanted);
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      off();
      if (timer) clearTimeout(timer);
      options.signal?.removeEventListener('abort', onAbort);
    };
    const off = node.on('state', (state) => {
      if (wanted.includes(state)) {
        cleanup();
        resolve(state);
      } else if (FINAL_STATES.includes(state)) {
        cleanup();
        reject(finalStateError(node, wanted));
      }
    });
    // A plain timer, not AbortSignal.timeout (whose timer is unref'd): a caller awaiting this
    // wait keeps its process alive until the wait settles.
    const timer =
      options.timeoutMs === undefined
        ? undefined
        : setTimeout(() => {
            cleanup();
            reject(
              new Error(
                `node did not reach ${wanted.join('|')} within ${options.timeoutMs} ms (state: ${node.state})`,
              ),
            );
          }, options.timeoutMs);
    const onAbort = (): void => {
      cleanup();
      reject(
        options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted'),
      );
    };
    options.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** `TetherNode.states`: the current state, then every change, until final or `signal` aborts. */
export async function* stateChanges(
  node: Watched,
  signal?: AbortSignal,
): AsyncIterableIterator<NodeConnectionState> {
  const queue: NodeConnectionState[] = [];
  let notify: (() => void) | undefined;
  const off = node.on('state', (state) => {
    queue.push(state);
    notify?.();
  });
  const onAbort = (): void => notify?.();
  signal?.addEventListener('abort', onAbort);
  try {
    yield node.state;
    if (FINAL_STATES.includes(node.state)) return;
    for (;;) {
      while (queue.length > 0) {
        const state = queue.shift()!;
        yield state;
        if (FINAL_STATES.includes(state)) return;
      }
      if (signal?.aborted) return;
      await new Promise<void>((resolve) => (notify = resolve));
      notify = undefined;
    }
  } finally {
    off();
    signal?.removeEventListener('abort', onAbort);
  }
}
