/**
 * Waits for an asynchronous condition the server reaches on its own (a sweep tick, a socket
 * close): polls `probe` until it returns a value that passes `accept`, or fails with the last
 * value after `timeoutMs`. Not a sleep: it returns as soon as the condition holds.
 */
export async function eventually<T>(
  probe: () => Promise<T>,
  accept: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (accept(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not reached in ${timeoutMs} ms; last: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
