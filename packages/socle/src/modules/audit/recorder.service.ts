import type { Logger } from '../../kernel/index.js';
import type { AuditStore, NewAuditEvent } from './audit.store.js';

/** Buffers audit events in memory and writes them in batches. */
export interface AuditRecorder {
  /** Queues an event; never throws, never waits for the database. */
  record(event: NewAuditEvent): void;
  /** Writes every queued event now; resolves when they are written (or their failure counted). */
  flush(): Promise<void>;
  /** Writes what is queued; events recorded afterwards are written at once, one batch each. */
  stop(): Promise<void>;
}

export interface AuditRecorderOptions {
  readonly store: Pick<AuditStore, 'insertEvents'>;
  readonly log: Logger;
  /** Counts events that could not be written (`socle_audit_write_failures_total`). */
  readonly failures: { inc(count?: number): void };
  /** Longest time an event waits in memory. */
  readonly flushIntervalMs: number;
  /** A batch this large is written without waiting for the interval. */
  readonly maxBatchSize: number;
  /**
   * Events kept in memory while the database does not take them; past this, new events are
   * dropped and counted as failures rather than growing the heap without bound.
   */
  readonly maxPending: number;
}

/**
 * Writes audit events in batches: every `flushIntervalMs` or as soon as `maxBatchSize` are queued,
 * one transaction per organization in the batch (its tenant is the transaction's, as row-level
 * security requires). Batching turns one transaction per mutating request into one per interval
 * and organization, off the request path.
 *
 * The trade-off: events live in memory until written. A crash (not a clean shutdown, which flushes
 * in `stop`) loses at most the last interval of events — a window the request path has anyway,
 * since an event is captured after its response is sent. A failed write is logged at error level
 * and counted; it never reaches the request that caused the event.
 */
export function createAuditRecorder(options: AuditRecorderOptions): AuditRecorder {
  const { store, log, failures } = options;
  let pending: NewAuditEvent[] = [];
  let timer: NodeJS.Timeout | undefined;
  /** The chain of write passes: one at a time, so batches are written in order. */
  let writing: Promise<void> = Promise.resolve();
  /** A pass queued on the chain that has not started yet: it will take whatever is pending. */
  let queued: Promise<void> | undefined;
  let stopped = false;
  let overflowing = false;

  async function writeBatch(batch: readonly NewAuditEvent[]): Promise<void> {
    const byTenant = new Map<string | null, NewAuditEvent[]>();
    for (const event of batch) {
      const events = byTenant.get(event.tenantId);
      if (events === undefined) byTenant.set(event.tenantId, [event]);
      else events.push(event);
    }
    for (const [tenantId, events] of byTenant) {
      try {
        await store.insertEvents(tenantId, events);
      } catch (error) {
        failures.inc(events.length);
        log.error(
          { err: error, tenantId, events: events.length, requestIds: events.map((event) => event.requestId) },
          'Audit events could not be written',
        );
      }
    }
  }

  async function writePending(): Promise<void> {
    queued = undefined;
    while (pending.length > 0) {
      const batch = pending.slice(0, options.maxBatchSize);
      pending = pending.slice(batch.length);
      await writeBatch(batch);
    }
  }

  function flush(): Promise<void> {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    if (queued === undefined) {
      writing = writing.then(writePending);
      queued = writing;
    }
    return queued;
  }

  return {
    record(event) {
      if (pending.length >= options.maxPending) {
        failures.inc();
        if (!overflowing) {
          overflowing = true;
          log.error(
            { pending: pending.length },
            'Audit events are not being written fast enough; dropping new ones',
          );
        }
        return;
      }
      overflowing = false;
      pending.push(event);
      if (stopped || pending.length >= options.maxBatchSize) {
        void flush();
      } else if (timer === undefined) {
        timer = setTimeout(() => void flush(), options.flushIntervalMs);
        // A pending timer must not keep the process alive; a clean shutdown flushes in stop().
        timer.unref();
      }
    },
    flush,
    stop() {
      stopped = true;
      return flush();
    },
  };
}
