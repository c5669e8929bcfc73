/**
 * Serialises work per key inside this process. Writ has one sequencer, so this is what makes
 * "exactly one of many concurrent consumes succeeds" and "a vote and an expiry never interleave"
 * true: the second caller runs only after the first one's write is durable.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    const result = previous.then(fn, fn);
    const tail = result.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** Runs `fn` holding every one of `keys`, taken in sorted order so two callers never deadlock. */
  runAll<T>(keys: string[], fn: () => Promise<T>): Promise<T> {
    const sorted = [...new Set(keys)].sort();
    const hold = (i: number): Promise<T> => (i === sorted.length ? fn() : this.run(sorted[i]!, () => hold(i + 1)));
    return hold(0);
  }
}

/** Per-key wake-ups for long polls. */
export class Watchers {
  private readonly waiting = new Map<string, Set<() => void>>();

  /** Resolves on the next `notify(key)`, after `ms`, or when `signal` aborts, whichever is first. */
  wait(key: string, ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise((resolve) => {
      const set = this.waiting.get(key) ?? new Set();
      this.waiting.set(key, set);
      const done = () => {
        clearTimeout(timer);
        set.delete(done);
        if (set.size === 0 && this.waiting.get(key) === set) this.waiting.delete(key);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      set.add(done);
      signal?.addEventListener('abort', done);
    });
  }

  notify(key: string): void {
    for (const done of [...(this.waiting.get(key) ?? [])]) done();
  }

  notifyAll(): void {
    for (const key of [...this.waiting.keys()]) this.notify(key);
  }
}

/** One timer per key, unref'd so it never holds the process open; long delays are chained. */
export class Deadlines {
  private readonly timers = new Map<string, NodeJS.Timeout>();

  at(key: string, when: number, fn: () => void): void {
    this.cancel(key);
    const delay = Math.max(0, when - Date.now());
    const timer = setTimeout(() => {
      this.timers.delete(key);
      if (Date.now() < when) this.at(key, when, fn);
      else fn();
    }, Math.min(delay, 2 ** 31 - 1));
    timer.unref();
    this.timers.set(key, timer);
  }

  cancel(key: string): void {
    clearTimeout(this.timers.get(key));
    this.timers.delete(key);
  }

  clear(): void {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
  }
}
