/**
 * At most `concurrency` tasks run at once, at most `maxQueued` more wait in order; beyond that
 * `run` rejects at once with `refuse()`, so a burst costs a fast 503 rather than unbounded memory.
 * Hand-written (30 lines) because p-limit, the usual choice, has no bounded queue.
 */
export interface ConcurrencyLimit {
  run<T>(task: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly queued: number;
}

export function createConcurrencyLimit(
  concurrency: number,
  maxQueued: number,
  refuse: () => Error,
): ConcurrencyLimit {
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError('concurrency is an integer ≥ 1');
  if (!Number.isInteger(maxQueued) || maxQueued < 0) throw new TypeError('maxQueued is an integer ≥ 0');
  let active = 0;
  const waiting: (() => void)[] = [];

  const release = () => {
    const next = waiting.shift();
    // The permit passes straight to the next task: `active` stays the same.
    if (next === undefined) active -= 1;
    else next();
  };

  return {
    async run(task) {
      if (active < concurrency) {
        active += 1;
      } else if (waiting.length < maxQueued) {
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        throw refuse();
      }
      try {
        return await task();
      } finally {
        release();
      }
    },
    get active() {
      return active;
    },
    get queued() {
      return waiting.length;
    },
  };
}
