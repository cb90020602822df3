/**
 * Coalescing for work that must follow every request but never run twice at once: the feed
 * hub's reads, the pool's notifications, the presence batches. A request while a run is in
 * progress folds into one more run after it, so every request is followed by a run that
 * started after it.
 */
export class SingleFlight {
  readonly #task: () => Promise<void>;
  readonly #onError: ((error: unknown) => void) | undefined;
  #running: Promise<void> | null = null;
  #again = false;

  constructor(task: () => Promise<void>, onError?: (error: unknown) => void) {
    this.#task = task;
    this.#onError = onError;
  }

  /** Starts a run now, or once more after the one in progress. */
  request(): void {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#task()
      .catch((error: unknown) => this.#onError?.(error))
      .finally(() => {
        this.#running = null;
        if (this.#again) {
          this.#again = false;
          this.request();
        }
      });
  }

  /** Resolves once no run is in progress or pending. */
  async idle(): Promise<void> {
    while (this.#running) await this.#running;
  }
}

/**
 * Items written in batches of up to `size`: everything pushed during one turn of the event
 * loop joins the batch, one batch is written at a time. `write` handles its own failures.
 */
export class BatchQueue<T> {
  #items: T[] = [];
  readonly #flusher: SingleFlight;

  constructor(size: number, write: (batch: T[]) => Promise<void>) {
    this.#flusher = new SingleFlight(async () => {
      await new Promise<void>((resolve) => setImmediate(resolve));
      while (this.#items.length > 0) await write(this.#items.splice(0, size));
    });
  }

  push(item: T): void {
    this.#items.push(item);
    this.#flusher.request();
  }

  /** Resolves once everything pushed so far has been written. */
  idle(): Promise<void> {
    return this.#flusher.idle();
  }
}
