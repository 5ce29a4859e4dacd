import type { Dispatcher } from 'undici';

type AbortListener = () => void;

/**
 * What cancels one attempt (its timer, or the caller's signal), as undici listens to it.
 *
 * undici takes an `AbortSignal` or an `EventEmitter` and uses only `aborted`, `reason` and
 * `addEventListener`/`removeEventListener('abort')` of it. An `AbortController` per attempt made
 * an `EventTarget` and an `AbortSignal` on every call, and undici's listener went through
 * `EventTarget`'s listener bookkeeping; this object is three fields. It is cheap enough to make per
 * attempt, so every attempt stays cancellable by its timer whatever the provider's timeouts.
 */
export class AttemptSignal {
  aborted = false;
  reason: unknown;
  /** Usually one listener (undici's for the request; before it, the token request's). */
  #listener: AbortListener | undefined;
  #more: AbortListener[] | undefined;

  addEventListener(_type: 'abort', listener: AbortListener): void {
    if (this.#listener === undefined) this.#listener = listener;
    else if (this.#more === undefined) this.#more = [listener];
    else this.#more.push(listener);
  }

  removeEventListener(_type: 'abort', listener: AbortListener): void {
    if (this.#listener === listener) this.#listener = undefined;
    else if (this.#more !== undefined) {
      const index = this.#more.indexOf(listener);
      if (index >= 0) this.#more.splice(index, 1);
    }
  }

  /** Aborts once: each listener runs once (undici adds them with `{ once: true }`). */
  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const first = this.#listener;
    const more = this.#more;
    this.#listener = undefined;
    this.#more = undefined;
    first?.();
    if (more !== undefined) for (const listener of more) listener();
  }

  /** As undici's request options type it (it reads only the members above). */
  forDispatcher(): NonNullable<Dispatcher.RequestOptions['signal']> {
    return this as unknown as AbortSignal;
  }
}
