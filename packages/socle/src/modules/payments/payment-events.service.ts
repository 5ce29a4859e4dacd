import {
  type Clock,
  type Database,
  isSocleError,
  type Logger,
  tenantSettings,
  withOwnerTransaction,
} from '../../kernel/index.js';
import { type PaymentEventFilter, type PaymentEventRow, paymentEventsStore } from './payment-events.store.js';
import { paymentsErrors } from './payments.errors.js';
import type { PaymentRoute } from './payments.store.js';
import type { PaymentsTables } from './payments.tables.js';
import type { VerifiedEvent } from './provider.js';

/** Longest error message kept with a failure. */
const MAX_ERROR_MESSAGE = 1000;

/** A provider event as the console's payments page lists it. */
export interface PaymentEvent {
  readonly provider: string;
  readonly eventId: string;
  readonly orgId: string;
  readonly paymentId: string | null;
  readonly type: string;
  /** applied: its effect is recorded (once); failed: its transaction rolled back, not applied since. */
  readonly status: 'applied' | 'failed';
  /** What an applied event did ('credited', 'ignored', ...). */
  readonly outcome: string | null;
  /** The last failure's error (kept once the event applies, for the record). */
  readonly errorCode: string | null;
  readonly errorMessage: string | null;
  /** Deliveries or retries that failed. */
  readonly failedAttempts: number;
  readonly firstSeenAt: Date;
  /** When it was applied, or its last failure. */
  readonly lastSeenAt: Date;
}

/** What a retry did: applied now (or a copy applied it first), or failed again. */
export type RetryResult =
  | { readonly status: 'applied'; readonly outcome: string }
  | { readonly status: 'failed'; readonly errorCode: string; readonly errorMessage: string };

/**
 * A verified event as JSON text: bigints (amounts of a refund, a dispute) as `{"$bigint": "…"}`,
 * dates as ISO strings; {@link parseVerifiedEvent} reads it back. The `acknowledge` callback is
 * not kept (a store's next delivery acknowledges the purchase again).
 */
export function serializeVerifiedEvent(event: VerifiedEvent): string {
  const { acknowledge: _acknowledge, ...kept } = event;
  return JSON.stringify(kept, (_key, value: unknown) =>
    typeof value === 'bigint' ? { $bigint: value.toString() } : value,
  );
}

/** Reads back what {@link serializeVerifiedEvent} wrote (text, or jsonb as the driver parsed it). */
export function parseVerifiedEvent(stored: unknown): VerifiedEvent {
  const text = typeof stored === 'string' ? stored : JSON.stringify(stored);
  const raw = JSON.parse(text, (_key, value: unknown) => {
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      const keys = Object.keys(value);
      const bigint = (value as { $bigint?: unknown }).$bigint;
      if (keys.length === 1 && typeof bigint === 'string') return BigInt(bigint);
    }
    return value;
  }) as VerifiedEvent & { occurredAt: string };
  const change =
    raw.change.kind === 'subscription'
      ? {
          ...raw.change,
          currentPeriodEnd:
            raw.change.currentPeriodEnd === null
              ? null
              : new Date(raw.change.currentPeriodEnd as unknown as string),
        }
      : raw.change;
  return { ...raw, occurredAt: new Date(raw.occurredAt), change };
}

const errorOf = (error: unknown) => ({
  errorCode: isSocleError(error) ? error.code : 'internal',
  errorMessage: (error instanceof Error ? error.message : String(error)).slice(0, MAX_ERROR_MESSAGE),
});

/**
 * Keeps the failures of provider events, after the transaction that applied one rolled back. It
 * is only called on that failure: the success path writes nothing more.
 */
export function createEventFailureRecorder(options: {
  readonly db: Database<PaymentsTables>;
  readonly clock: Clock;
  readonly log: Logger;
}) {
  const { db, clock, log } = options;
  return {
    /** Records (or counts one more attempt of) a failure; never throws (the caller rethrows its error). */
    async record(provider: string, event: VerifiedEvent, route: PaymentRoute, error: unknown): Promise<void> {
      const { errorCode, errorMessage } = errorOf(error);
      try {
        await db.transaction(
          (trx) =>
            paymentEventsStore.recordFailure(trx, {
              provider,
              eventId: event.eventId,
              paymentId: route.payment_id,
              type: event.type,
              errorCode,
              errorMessage,
              seenAt: clock.now(),
              verified: serializeVerifiedEvent(event),
            }),
          { settings: tenantSettings({ tenantId: route.tenant_id }) },
        );
      } catch (recordError) {
        log.error(
          { err: recordError, provider, eventId: event.eventId },
          'The failure of a payment event could not be recorded',
        );
      }
    },
  };
}

const toPaymentEvent = (row: PaymentEventRow): PaymentEvent => ({
  provider: row.provider,
  eventId: row.event_id,
  orgId: row.tenant_id,
  paymentId: row.payment_id,
  type: row.type,
  status: row.status,
  outcome: row.outcome,
  errorCode: row.error_code,
  errorMessage: row.error_message,
  failedAttempts: Number(row.failed_attempts),
  firstSeenAt: new Date(row.first_seen_at),
  lastSeenAt: new Date(row.last_seen_at),
});

/**
 * The payments page's reads and its one action: provider events received, applied or failed (of
 * the current organization, or of every one for the operator), and the retry of a failed one with
 * the verified event kept at its failure, applied like a redelivery (exactly once: the primary key
 * of `events` decides, as for any delivery).
 */
export function createPaymentEventsService(options: {
  readonly db: Database<PaymentsTables>;
  readonly receiveEvent: (provider: string, event: VerifiedEvent) => Promise<{ outcome: string }>;
}) {
  const { db } = options;

  async function retry(provider: string, stored: unknown): Promise<RetryResult> {
    try {
      const { outcome } = await options.receiveEvent(provider, parseVerifiedEvent(stored));
      return { status: 'applied', outcome };
    } catch (error) {
      // Recorded as one more failed attempt by receiveEvent; the caller sees why.
      return { status: 'failed', ...errorOf(error) };
    }
  }

  return {
    /** The current organization's provider events, most recently seen first. */
    async list(filter: PaymentEventFilter): Promise<PaymentEvent[]> {
      return (await paymentEventsStore.listOfOrganization(db.kysely, filter)).map(toPaymentEvent);
    },

    /** Every organization's provider events (operator), most recently seen first. */
    async listAll(filter: PaymentEventFilter): Promise<PaymentEvent[]> {
      const rows = await withOwnerTransaction(db, (connection) =>
        paymentEventsStore.listOfEveryOrganization(connection, db.kysely, filter),
      );
      return rows.map(toPaymentEvent);
    },

    /** Applies a failed event of the current organization again, from what was verified at its failure. */
    async retry(provider: string, eventId: string): Promise<RetryResult> {
      const failure = await paymentEventsStore.findRetryable(db.kysely, provider, eventId);
      if (failure === undefined) {
        if ((await paymentEventsStore.eventState(db.kysely, provider, eventId)) === 'applied')
          throw paymentsErrors.eventAlreadyApplied(provider, eventId);
        throw paymentsErrors.eventNotFound(provider, eventId);
      }
      return retry(provider, failure.verified);
    },

    /** The same, for any organization's event (operator). */
    async retryAny(provider: string, eventId: string): Promise<RetryResult> {
      const state = await withOwnerTransaction(db, async (connection) => {
        const { rows } = await connection.query<{ verified: unknown; applied: boolean }>(
          `select f.verified,
                  exists (select 1 from payments.events e where e.provider = f.provider and e.event_id = f.event_id) as applied
             from payments.event_failures f where f.provider = $1 and f.event_id = $2`,
          [provider, eventId],
        );
        return rows[0];
      });
      if (state === undefined) throw paymentsErrors.eventNotFound(provider, eventId);
      if (state.applied) throw paymentsErrors.eventAlreadyApplied(provider, eventId);
      return retry(provider, state.verified);
    },
  };
}

export type PaymentEventsService = ReturnType<typeof createPaymentEventsService>;
