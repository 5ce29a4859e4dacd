/**
 * A FIFO lock. PGlite is one session: a transaction must own it from BEGIN to COMMIT, or another
 * caller's statement would run inside it. Written here because the few lines needed do not
 * justify a dependency and the fairness (FIFO) matters for latency.
 */
export class Mutex {
  #locked = false;
  readonly #waiters: (() => void)[] = [];

  get waiting(): number {
    return this.#waiters.length;
  }

  get locked(): boolean {
    return this.#locked;
  }

  async lock(): Promise<void> {
    if (!this.#locked) {
      this.#locked = true;
      return;
    }
    await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  unlock(): void {
    const next = this.#waiters.shift();
    if (next) next();
    else this.#locked = false;
  }
}
