/**
 * A one-shot answer with a deadline, for calls over a socket: the returned `settle` passes the
 * first value to `resolve` and clears the deadline; later calls are ignored. When the deadline
 * passes first, it settles with `timeoutValue`, then runs `onTimeout` (e.g. to drop the socket).
 */
export function settleOnce<T>(
  resolve: (value: T) => void,
  timeoutMs: number,
  timeoutValue: T,
  onTimeout?: () => void,
): (value: T) => void {
  let settled = false;
  const settle = (value: T): void => {
    if (settled) return;
    settled = true;
    clearTimeout(timer);
    resolve(value);
  };
  const timer = setTimeout(() => {
    settle(timeoutValue);
    onTimeout?.();
  }, timeoutMs);
  return settle;
}
