import type { Logger } from '../../kernel/log/index.js';
import type { DrainResult } from './delivery.service.js';

export interface DeliveryLoopOptions {
  readonly drainOnce: () => Promise<DrainResult>;
  readonly intervalMs: number;
  /** A full batch means more may be due: the next pass starts at once instead of after the interval. */
  readonly batchSize: number;
  readonly log: Logger;
}

export interface DeliveryLoop {
  /** Stops polling and resolves once the pass in flight, if any, has recorded its outcomes. */
  stop(): Promise<void>;
}

/**
 * Polls the outbox on this node: a pass, then a pause of `intervalMs`, until stopped. Every node
 * runs one; the claim in the store keeps them from sending a mail twice.
 *
 * A stand-in for the jobs engine (pg-boss, coming later): it will become a recurring job that
 * calls the same `drainOnce`, and this file goes away. Nothing else depends on it.
 */
export function startDeliveryLoop(options: DeliveryLoopOptions): DeliveryLoop {
  const { drainOnce, intervalMs, batchSize, log } = options;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let inFlight: Promise<void> | undefined;

  const schedule = (delayMs: number) => {
    if (stopped) return;
    timer = setTimeout(pass, delayMs);
    // The loop alone must not keep a process alive (a CLI command, a test).
    timer.unref();
  };

  function pass(): void {
    timer = undefined;
    inFlight = drainOnce().then(
      (result) => schedule(result.claimed >= batchSize ? 0 : intervalMs),
      (error: unknown) => {
        // The database is unreachable or failing: try again later, the rows are still there.
        log.warn({ err: error }, 'Mail delivery pass failed; retrying after the poll interval');
        schedule(intervalMs);
      },
    );
  }

  schedule(intervalMs);
  return {
    async stop() {
      stopped = true;
      if (timer !== undefined) clearTimeout(timer);
      await inFlight;
    },
  };
}
