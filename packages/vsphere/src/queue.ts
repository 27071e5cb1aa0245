/** A counting semaphore that admits waiters in FIFO order. */
export class Semaphore {
  private available: number;
  private readonly waiters: Array<() => void> = [];

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`concurrency must be a positive integer, got ${size}`);
    this.available = size;
  }

  /** Requests waiting for a slot. */
  get queued(): number {
    return this.waiters.length;
  }

  /**
   * Runs `fn` when a slot is free. If `waitSignal` aborts while waiting, rejects with its reason and never
   * runs `fn`. `first` puts the waiter at the head of the queue (a re-login, which every queued
   * call is waiting for).
   */
  async run<T>(fn: () => Promise<T>, waitSignal?: AbortSignal | (() => AbortSignal), first = false): Promise<T> {
    if (this.available > 0) {
      if (typeof waitSignal !== "function") waitSignal?.throwIfAborted();
      this.available--;
    } else {
      // A signal given as a function is made only now, when there is a wait to abort.
      const signal = typeof waitSignal === "function" ? waitSignal() : waitSignal;
      signal?.throwIfAborted();
      await new Promise<void>((resolve, reject) => {
        const waiter = (): void => {
          signal?.removeEventListener("abort", onAbort);
          resolve();
        };
        const onAbort = (): void => {
          const i = this.waiters.indexOf(waiter);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal?.reason);
        };
        signal?.addEventListener("abort", onAbort, { once: true });
        if (first) this.waiters.unshift(waiter);
        else this.waiters.push(waiter);
      });
    }
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next) next();
      else this.available++;
    }
  }
}
