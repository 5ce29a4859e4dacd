import { randomUUID } from 'node:crypto';
import type { Clock, Jobs, Transaction } from 'socle';
import { type Appointment, type BookingStore, isOverlap, type Viewer } from './booking.store.js';
import { cryptocareErrors } from './cryptocare.errors.js';
import type { DirectoryStore } from './directory.store.js';

const MINUTE_MS = 60_000;
const HOUR_MS = 60 * MINUTE_MS;

/** What happened to an appointment, as the patient's page and the practice's agenda learn it. */
export type AppointmentEvent =
  | 'appointment.held'
  | 'appointment.confirmed'
  | 'appointment.cancelled'
  | 'appointment.expired'
  | 'appointment.rescheduled'
  | 'appointment.payment_flagged'
  | 'appointment.zoom_ready';

/** What opening an appointment's invoice asks of the payments module. */
export interface InvoiceRequest {
  readonly appointmentId: string;
  readonly orgId: string;
  readonly patientId: string;
  readonly amountChfCents: number;
  readonly description: string;
  /** The hold's length: the invoice expires with it. */
  readonly holdMinutes: number;
}

/** What the patient's page shows: the QR code of `paymentUri`, with Lightning when offered. */
export interface PaymentInvoice {
  /** The payments module's payment id. */
  readonly invoiceId: string;
  /** BIP21 URI (`bitcoin:…?amount=…&lightning=…`). */
  readonly paymentUri: string;
  readonly amountSats: number;
  readonly expiresAt: Date;
  readonly checkoutUrl: string | null;
  readonly qrSvg: string;
}

/** A payment of an appointment's invoice, as the payments module reports it. */
export interface SettledPayment {
  readonly appointmentId: string;
  readonly orgId: string;
  readonly invoiceId: string;
  readonly paidChfCents: number;
  /** When it was applied: after the hold's expiry it is a late payment. */
  readonly paidAt: Date;
}

export interface BookingServiceOptions {
  readonly store: BookingStore;
  readonly directory: DirectoryStore;
  readonly clock: Clock;
  readonly jobs: Jobs;
  readonly holdMinutes: number;
  /** A patient may cancel or move a confirmed appointment up to this many hours before it. */
  readonly noticeHours: number;
  /** Opens the hold's invoice (the payments module); none, the hold just expires. */
  readonly openInvoice: ((request: InvoiceRequest) => Promise<PaymentInvoice>) | undefined;
  /** Tells the patient and the practice, after the change committed. */
  readonly announce: (appointment: Appointment, event: AppointmentEvent) => Promise<void>;
  /** Queues the patient's mail about the change, inside its transaction. */
  readonly mailPatient: (
    trx: Transaction<unknown>,
    appointment: Appointment,
    event: AppointmentEvent,
  ) => Promise<void>;
}

/**
 * Booking: a hold on a slot (unique by the database's exclusion constraint, never by a check
 * here), its expiry, payment, cancellation and rescheduling.
 */
export function createBookingService(options: BookingServiceOptions) {
  const { store, directory, clock, jobs } = options;

  async function slotOf(professionalId: string, startsAt: Date) {
    const at = clock.now();
    // The professional and the schedule's slot starting then, booked or not, in one statement:
    // the grid decides what a slot is, the exclusion constraint decides whether it is free.
    const found = await directory.professionalSlot(professionalId, startsAt, at);
    if (found === undefined) throw cryptocareErrors.professionalNotFound(professionalId);
    const { professional, slot } = found;
    if (startsAt <= at) throw cryptocareErrors.slotInPast(startsAt);
    if (slot === undefined || slot.startsAt.getTime() !== startsAt.getTime())
      throw cryptocareErrors.notASlot(professionalId, startsAt);
    const blocksUntil = new Date(slot.endsAt.getTime() + professional.bufferMinutes * MINUTE_MS);
    return { professional, slot, blocksUntil, at };
  }

  async function announceAll(changes: readonly (readonly [Appointment | undefined, AppointmentEvent])[]) {
    for (const [appointment, event] of changes) if (appointment) await options.announce(appointment, event);
  }

  async function expiredHolds(
    trx: Transaction<unknown>,
    professionalId: string,
    from: Date,
    to: Date,
    at: Date,
  ) {
    const expired = await store.expireStaleHolds(trx, professionalId, from, to, at);
    return Promise.all(
      expired.map(async ({ id }) => [await store.find(trx, id), 'appointment.expired'] as const),
    );
  }

  return {
    /**
     * Places a hold on the slot for the patient (pending payment, expiring after `holdMinutes`);
     * 409 `cryptocare.slot_taken` when the slot is held or booked already.
     */
    async hold(
      patientId: string,
      request: { professionalId: string; startsAt: Date; orgId?: string | undefined },
    ): Promise<{ appointment: Appointment; invoice: PaymentInvoice | undefined }> {
      const { professional, slot, blocksUntil, at } = await slotOf(request.professionalId, request.startsAt);
      const orgId =
        request.orgId ?? (professional.practices.length === 1 ? professional.practices[0] : undefined);
      if (orgId === undefined)
        throw cryptocareErrors.practiceRequired(professional.id, professional.practices);
      if (!professional.practices.includes(orgId))
        throw cryptocareErrors.notInPractice(professional.id, orgId);
      const id = randomUUID();
      const holdExpiresAt = new Date(at.getTime() + options.holdMinutes * MINUTE_MS);
      let released: (readonly [Appointment | undefined, AppointmentEvent])[] = [];
      const appointment = await store
        .transaction({ userId: patientId }, async (trx) => {
          await store.lockAgenda(trx, professional.id);
          released = await expiredHolds(trx, professional.id, slot.startsAt, blocksUntil, at);
          const inserted = await store.insertHold(trx, {
            id,
            orgId,
            professionalId: professional.id,
            patientId,
            startsAt: slot.startsAt,
            endsAt: slot.endsAt,
            blocksUntil,
            holdExpiresAt,
            priceChfCents: professional.priceChfCents,
            at,
          });
          await jobs.enqueue(
            trx,
            'cryptocare.expireHold',
            { appointmentId: id, orgId },
            { key: id, startAfter: holdExpiresAt },
          );
          return inserted;
        })
        .catch((error: unknown) => {
          throw isOverlap(error) ? cryptocareErrors.slotTaken(professional.id, slot.startsAt) : error;
        });
      await announceAll([...released, [appointment, 'appointment.held']]);
      // Asked after the hold committed: a slow or failing processor never holds a slot lock. When
      // no invoice can be opened the hold is released at once (the patient could not pay it) and
      // the payments module's error answers (503 payments.provider_unavailable…).
      let invoice: PaymentInvoice | undefined;
      try {
        invoice = await options.openInvoice?.({
          appointmentId: id,
          orgId,
          patientId,
          amountChfCents: professional.priceChfCents,
          description: `Consultation ${professional.displayName} ${slot.startsAt.toISOString()}`,
          holdMinutes: options.holdMinutes,
        });
      } catch (error) {
        const released = await store.transaction({ orgId }, (trx) => expireIn(trx, id, clock.now(), true));
        if (typeof released === 'object') await options.announce(released, 'appointment.expired');
        throw error;
      }
      const invoiceId = invoice?.invoiceId;
      if (invoiceId !== undefined)
        await store.transaction({ userId: patientId }, (trx) =>
          store.setInvoice(trx, id, professional.id, invoiceId),
        );
      return { appointment: { ...appointment, invoiceId: invoice?.invoiceId ?? null }, invoice };
    },

    /** The viewer's appointment (404 when it is not theirs or their practice's). */
    async get(viewer: Viewer, id: string): Promise<Appointment> {
      const appointment = await store.transaction(viewer, (trx) => store.find(trx, id));
      if (appointment === undefined) throw cryptocareErrors.appointmentNotFound(id);
      return appointment;
    },

    list: (viewer: Viewer, filter: { professionalId?: string | undefined; from: Date; to: Date }) =>
      store.list(viewer, filter),

    /**
     * Cancels: a patient any hold, and a confirmed appointment until `noticeHours` before it; the
     * practice (acting in its organization) any appointment that has not started.
     */
    async cancel(viewer: Viewer, id: string): Promise<Appointment> {
      const at = clock.now();
      const cancelled = await store.transaction(viewer, async (trx) => {
        const appointment = await store.find(trx, id, true);
        if (appointment === undefined) throw cryptocareErrors.appointmentNotFound(id);
        if (appointment.status !== 'held' && appointment.status !== 'confirmed')
          throw cryptocareErrors.notCancellable(id, appointment.status);
        if (appointment.startsAt <= at) throw cryptocareErrors.notCancellable(id, 'started');
        const byPractice = viewer.orgId === appointment.orgId;
        if (
          !byPractice &&
          appointment.status === 'confirmed' &&
          appointment.startsAt.getTime() - at.getTime() < options.noticeHours * HOUR_MS
        )
          throw cryptocareErrors.tooLateToChange(id, options.noticeHours);
        await store.setStatus(
          trx,
          id,
          'cancelled',
          at,
          appointment.paidAt ? { paymentFlag: 'refund_due' } : {},
        );
        const changed = (await store.find(trx, id)) as Appointment;
        await options.mailPatient(trx, changed, 'appointment.cancelled');
        return changed;
      });
      await options.announce(cancelled, 'appointment.cancelled');
      return cancelled;
    },

    /** Moves the patient's appointment to another free slot of the same professional. */
    async reschedule(viewer: Viewer, id: string, startsAt: Date): Promise<Appointment> {
      const current = await this.get(viewer, id);
      const { slot, blocksUntil, at } = await slotOf(current.professionalId, startsAt);
      const moved = await store
        .transaction(viewer, async (trx) => {
          const appointment = await store.find(trx, id, true);
          if (appointment === undefined) throw cryptocareErrors.appointmentNotFound(id);
          if (appointment.status !== 'held' && appointment.status !== 'confirmed')
            throw cryptocareErrors.notCancellable(id, appointment.status);
          if (
            viewer.orgId !== appointment.orgId &&
            appointment.startsAt.getTime() - at.getTime() < options.noticeHours * HOUR_MS
          )
            throw cryptocareErrors.tooLateToChange(id, options.noticeHours);
          await expiredHolds(trx, appointment.professionalId, slot.startsAt, blocksUntil, at);
          await store.move(trx, id, { startsAt: slot.startsAt, endsAt: slot.endsAt, blocksUntil }, at);
          const changed = (await store.find(trx, id)) as Appointment;
          if (changed.status === 'confirmed') {
            await jobs.enqueue(
              trx,
              'cryptocare.syncMeeting',
              { appointmentId: id, orgId: changed.orgId },
              { key: `${id}:${slot.startsAt.toISOString()}` },
            );
            await options.mailPatient(trx, changed, 'appointment.rescheduled');
          }
          return changed;
        })
        .catch((error: unknown) => {
          throw isOverlap(error) ? cryptocareErrors.slotTaken(current.professionalId, slot.startsAt) : error;
        });
      await options.announce(moved, 'appointment.rescheduled');
      return moved;
    },

    /**
     * An invoice was paid, in the transaction that records it (the payments module's
     * `payment.succeeded`). Confirms a live hold paid in full (and queues the Zoom link and the
     * mail in that transaction); a duplicate or reordered notice changes nothing; an underpayment,
     * or a payment after the hold expired or was cancelled, is flagged for the practice and never
     * confirms. Returns what to announce once committed (nothing for an unknown appointment).
     */
    async applyPayment(
      trx: Transaction<unknown>,
      payment: SettledPayment,
    ): Promise<{ appointment: Appointment | undefined; event: AppointmentEvent | undefined }> {
      const at = clock.now();
      const current = await store.find(trx, payment.appointmentId, true);
      if (current === undefined || current.status === 'confirmed')
        return { appointment: current, event: undefined };
      let event: AppointmentEvent;
      const late =
        current.status !== 'held' ||
        (current.holdExpiresAt !== null && payment.paidAt > current.holdExpiresAt);
      if (late) {
        await store.flagPayment(trx, current.id, 'late_payment', at);
        if (current.status === 'held') await store.setStatus(trx, current.id, 'expired', at);
        event = 'appointment.payment_flagged';
      } else if (payment.paidChfCents < current.priceChfCents) {
        await store.flagPayment(trx, current.id, 'underpaid', at);
        event = 'appointment.payment_flagged';
      } else {
        if (current.paymentFlag === 'underpaid') await store.clearUnderpaid(trx, current.id);
        await store.setStatus(trx, current.id, 'confirmed', at, {
          paidAt: payment.paidAt,
          invoiceId: payment.invoiceId,
        });
        await jobs.enqueue(
          trx,
          'cryptocare.syncMeeting',
          { appointmentId: current.id, orgId: current.orgId },
          { key: `${current.id}:${current.startsAt.toISOString()}` },
        );
        event = 'appointment.confirmed';
      }
      const changed = (await store.find(trx, current.id)) as Appointment;
      if (event === 'appointment.confirmed') await options.mailPatient(trx, changed, event);
      return { appointment: changed, event };
    },

    /**
     * The invoice received less than the price (the payments module's `payment.partially_paid`
     * while it is open, `payment.underpaid` once it expired so), in that event's transaction:
     * the appointment is flagged `underpaid` with what came and what is missing, never confirmed.
     * While the hold lives the patient may still send the rest (a later settlement confirms it);
     * an underpaid invoice that expired ends the hold and frees the slot, for the practice to
     * refund or settle by hand. A confirmed, cancelled or unknown appointment is left alone.
     */
    async applyUnderpayment(
      trx: Transaction<unknown>,
      underpayment: {
        readonly appointmentId: string;
        readonly receivedSats: number;
        readonly missingSats: number;
        readonly final: boolean;
      },
    ): Promise<Appointment | undefined> {
      const at = clock.now();
      const current = await store.find(trx, underpayment.appointmentId, true);
      if (current === undefined || (current.status !== 'held' && current.status !== 'expired'))
        return undefined;
      await store.flagUnderpaid(trx, current.id, underpayment, at);
      if (underpayment.final && current.status === 'held')
        await store.setStatus(trx, current.id, 'expired', at);
      return (await store.find(trx, current.id)) as Appointment;
    },

    /** {@link applyPayment} in its own transaction, announced once committed. */
    async paymentSettled(payment: SettledPayment): Promise<Appointment> {
      const { appointment, event } = await store.transaction({ orgId: payment.orgId }, (trx) =>
        this.applyPayment(trx, payment),
      );
      if (appointment === undefined) throw cryptocareErrors.appointmentNotFound(payment.appointmentId);
      if (event !== undefined) await options.announce(appointment, event);
      return appointment;
    },

    /**
     * The invoice expired unpaid (the payments module's `invoice.expired`, in its transaction):
     * the hold ends now, whatever its own expiry says. Returns the expired appointment to announce.
     */
    expireInvoiceHold: async (trx: Transaction<unknown>, appointmentId: string) => {
      const expired = await expireIn(trx, appointmentId, clock.now(), true);
      return typeof expired === 'object' ? expired : undefined;
    },

    /**
     * The hold's own expiry (its job, due at the expiry): ends it if it is still a hold. Run
     * before its time (the job engine's clock ahead of Socle's), it says how long is left and
     * changes nothing.
     */
    async expireHold(
      appointmentId: string,
      orgId: string,
    ): Promise<{ expired: boolean; remainingMs: number }> {
      const expired = await expire(appointmentId, orgId);
      return typeof expired === 'number'
        ? { expired: false, remainingMs: expired }
        : { expired: expired !== undefined, remainingMs: 0 };
    },
  };

  /** Expires the hold; undefined if it is no hold, or the milliseconds left before its expiry. */
  async function expireIn(
    trx: Transaction<unknown>,
    appointmentId: string,
    at: Date,
    whateverTheTime: boolean,
  ) {
    const current = await store.find(trx, appointmentId, true);
    if (current?.status !== 'held') return undefined;
    if (!whateverTheTime && current.holdExpiresAt !== null && current.holdExpiresAt > at)
      return current.holdExpiresAt.getTime() - at.getTime();
    await store.setStatus(trx, appointmentId, 'expired', at);
    return (await store.find(trx, appointmentId)) as Appointment;
  }

  async function expire(appointmentId: string, orgId: string) {
    const expired = await store.transaction({ orgId }, (trx) =>
      expireIn(trx, appointmentId, clock.now(), false),
    );
    if (typeof expired === 'object') await options.announce(expired, 'appointment.expired');
    return expired;
  }
}

export type BookingService = ReturnType<typeof createBookingService>;
