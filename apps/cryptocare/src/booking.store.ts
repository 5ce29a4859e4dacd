import { type Database, lockUntilTransactionEnds, sql, type Transaction, tenantSettings } from 'socle';

export type AppointmentStatus = 'held' | 'confirmed' | 'cancelled' | 'expired';

/** An appointment as the service hands it out. */
export interface Appointment {
  readonly id: string;
  readonly orgId: string;
  readonly professionalId: string;
  readonly patientId: string | null;
  readonly startsAt: Date;
  readonly endsAt: Date;
  readonly status: AppointmentStatus;
  readonly holdExpiresAt: Date | null;
  readonly priceChfCents: number;
  readonly invoiceId: string | null;
  readonly paymentFlag: string | null;
  /** An underpaid invoice: sats the processor received, and sats missing (null otherwise). */
  readonly receivedSats: number | null;
  readonly missingSats: number | null;
  readonly paidAt: Date | null;
  readonly zoomJoinUrl: string | null;
  readonly zoomMeetingId: string | null;
}

export interface NewHold {
  readonly id: string;
  readonly orgId: string;
  readonly professionalId: string;
  readonly patientId: string;
  readonly startsAt: Date;
  readonly endsAt: Date;
  /** The end of the range the hold blocks: the slot and its buffer. */
  readonly blocksUntil: Date;
  readonly holdExpiresAt: Date;
  readonly priceChfCents: number;
  readonly at: Date;
}

/** Who looks at appointments: a patient (their own), or a practice's member (its agenda). */
export type Viewer = { readonly userId?: string | undefined; readonly orgId?: string | undefined };

const COLUMNS = sql`a.id, a.tenant_id as "orgId", a.professional_id as "professionalId",
  a.patient_id as "patientId", a.starts_at as "startsAt", a.ends_at as "endsAt", a.status,
  a.hold_expires_at as "holdExpiresAt", a.price_chf_cents as "priceChfCents",
  a.invoice_id as "invoiceId", a.payment_flag as "paymentFlag", a.paid_at as "paidAt",
  a.received_sats::float8 as "receivedSats", a.missing_sats::float8 as "missingSats",
  a.zoom_join_url as "zoomJoinUrl", a.zoom_meeting_id as "zoomMeetingId"`;

/** Postgres' `exclusion_violation`: the constraint refused an overlapping live appointment. */
export const isOverlap = (error: unknown) => (error as { code?: unknown } | null)?.code === '23P01';

/**
 * Queues the transaction behind every other one writing this professional's agenda, until it
 * ends. Two holds inserting overlapping ranges at once would otherwise each wait for the other in
 * the exclusion constraint's check (Postgres kills one after a second: a deadlock, seen as 409
 * db.conflict in CI's 3,000-hold race); so would a hold and any update of an overlapping live
 * appointment (an update that is not HOT re-checks the constraint: its invoice, its Zoom link).
 * Taken first, before any row lock, by every transaction that writes an appointment
 * (`find(…, true)` and lockAgendaOf take it), so all take the same order. The constraint still
 * decides what is free.
 */
export const lockAgenda = (trx: Transaction<unknown>, professionalId: string) =>
  lockUntilTransactionEnds(trx, `cryptocare.agenda:${professionalId}`);

/** lockAgenda for the professional of appointment `id`; false when there is no such appointment. */
export async function lockAgendaOf(trx: Transaction<unknown>, id: string): Promise<boolean> {
  // The professional of an appointment never changes: read it, then lock their agenda.
  const { rows } = await sql<{ professionalId: string }>`select professional_id as "professionalId"
      from cryptocare.appointments where id = ${id}`.execute(trx);
  if (rows[0] === undefined) return false;
  await lockAgenda(trx, rows[0].professionalId);
  return true;
}

/**
 * Every SQL statement about appointments. A patient acts as themselves (row-level security shows
 * them their own); a practice acts in its organization; system work (expiry, payment, Zoom,
 * reminders) acts in the appointment's organization.
 */
export function createBookingStore(db: Database) {
  const settingsOf = (viewer: Viewer) =>
    tenantSettings({
      ...(viewer.userId === undefined ? {} : { userId: viewer.userId }),
      ...(viewer.orgId === undefined ? {} : { tenantId: viewer.orgId }),
    });
  return {
    settingsOf,

    /** Transactions in the viewer's scope (row-level security applies). */
    transaction: <T>(viewer: Viewer, work: (trx: Transaction<unknown>) => Promise<T>) =>
      db.transaction(work, { settings: settingsOf(viewer) }),

    /** Marks expired the holds past their expiry overlapping the range (other patients' too). */
    async expireStaleHolds(
      trx: Transaction<unknown>,
      professionalId: string,
      from: Date,
      to: Date,
      at: Date,
    ) {
      const { rows } = await sql<{ id: string; patientId: string | null; orgId: string }>`
        select id, patient_id as "patientId", tenant_id as "orgId"
          from cryptocare.expire_stale_holds(${professionalId}, tstzrange(${from}, ${to}), ${at})`.execute(
        trx,
      );
      return rows;
    },

    /**
     * Inserts a hold and returns it as inserted (no second statement to read it back); throws an
     * `exclusion_violation` (isOverlap) when the range is taken.
     */
    async insertHold(trx: Transaction<unknown>, hold: NewHold): Promise<Appointment> {
      const { rows } = await sql<Appointment>`insert into cryptocare.appointments as a (id, tenant_id,
          professional_id, patient_id, starts_at, ends_at, during, status, hold_expires_at,
          price_chf_cents, created_at, updated_at)
        values (${hold.id}, ${hold.orgId}, ${hold.professionalId}, ${hold.patientId}, ${hold.startsAt},
          ${hold.endsAt}, tstzrange(${hold.startsAt}, ${hold.blocksUntil}), 'held', ${hold.holdExpiresAt},
          ${hold.priceChfCents}, ${hold.at}, ${hold.at})
        returning ${COLUMNS}`.execute(trx);
      return rows[0] as Appointment;
    },

    lockAgenda,

    /** The appointment; `forUpdate` locks its professional's agenda (lockAgenda), then its row. */
    async find(trx: Transaction<unknown>, id: string, forUpdate = false): Promise<Appointment | undefined> {
      if (!forUpdate) {
        const { rows } = await sql<Appointment>`select ${COLUMNS} from cryptocare.appointments a
          where a.id = ${id}`.execute(trx);
        return rows[0];
      }
      if (!(await lockAgendaOf(trx, id))) return undefined;
      const { rows } = await sql<Appointment>`select ${COLUMNS} from cryptocare.appointments a
        where a.id = ${id} for update`.execute(trx);
      return rows[0];
    },

    /** Sets the status (and what a payment adds); a status other than held clears the expiry. */
    async setStatus(
      trx: Transaction<unknown>,
      id: string,
      status: AppointmentStatus,
      at: Date,
      extra: { paidAt?: Date; invoiceId?: string; paymentFlag?: string } = {},
    ): Promise<void> {
      await sql`update cryptocare.appointments set status = ${status}, updated_at = ${at},
          paid_at = coalesce(${extra.paidAt ?? null}::timestamptz, paid_at),
          invoice_id = coalesce(${extra.invoiceId ?? null}::text, invoice_id),
          payment_flag = coalesce(${extra.paymentFlag ?? null}::text, payment_flag),
          hold_expires_at = case when ${status} = 'held' then hold_expires_at else null end
        where id = ${id}`.execute(trx);
    },

    /** Stores the invoice of appointment `id` of `professionalId` (its agenda locked first). */
    async setInvoice(
      trx: Transaction<unknown>,
      id: string,
      professionalId: string,
      invoiceId: string,
    ): Promise<void> {
      // The caller knows the professional: lockAgenda directly, not lockAgendaOf's read of it.
      await lockAgenda(trx, professionalId);
      await sql`update cryptocare.appointments set invoice_id = ${invoiceId} where id = ${id}`.execute(trx);
    },

    /** Flags an underpayment with what came and what is missing (sats). */
    async flagUnderpaid(
      trx: Transaction<unknown>,
      id: string,
      amounts: { receivedSats: number; missingSats: number },
      at: Date,
    ): Promise<void> {
      await sql`update cryptocare.appointments set payment_flag = 'underpaid', updated_at = ${at},
          received_sats = ${amounts.receivedSats}, missing_sats = ${amounts.missingSats}
        where id = ${id}`.execute(trx);
    },

    /** The rest came: the underpayment is settled (confirmed appointments carry no flag). */
    async clearUnderpaid(trx: Transaction<unknown>, id: string): Promise<void> {
      await sql`update cryptocare.appointments set payment_flag = null, received_sats = null, missing_sats = null
        where id = ${id} and payment_flag = 'underpaid'`.execute(trx);
    },

    async flagPayment(trx: Transaction<unknown>, id: string, flag: string, at: Date): Promise<void> {
      await sql`update cryptocare.appointments set payment_flag = ${flag}, updated_at = ${at}
        where id = ${id}`.execute(trx);
    },

    /** Moves the appointment; throws an `exclusion_violation` when the new range is taken. */
    async move(
      trx: Transaction<unknown>,
      id: string,
      slot: { startsAt: Date; endsAt: Date; blocksUntil: Date },
      at: Date,
    ): Promise<void> {
      await sql`update cryptocare.appointments set starts_at = ${slot.startsAt}, ends_at = ${slot.endsAt},
          during = tstzrange(${slot.startsAt}, ${slot.blocksUntil}), updated_at = ${at},
          reminded_24h_at = null, reminded_1h_at = null
        where id = ${id}`.execute(trx);
    },

    /** The viewer's appointments (a patient's own, or the agenda of the organization they act in). */
    async list(
      viewer: Viewer,
      filter: { professionalId?: string | undefined; from: Date; to: Date },
    ): Promise<Appointment[]> {
      // Whose appointments, spelled out: a practice's agenda is the practice's only. Row-level
      // security alone (`patient_id = user or tenant_id = org`) also let in the member's own
      // appointments as a patient of another practice. (Cost: the same either way; EXPLAIN as the
      // app role shows a BitmapOr of the patient and tenant indexes on (…, starts_at).)
      const whose =
        viewer.orgId !== undefined
          ? sql`a.tenant_id = ${viewer.orgId}::uuid`
          : sql`a.patient_id = ${viewer.userId ?? null}::uuid`;
      const { rows } = await sql<Appointment>`select ${COLUMNS} from cryptocare.appointments a
        where ${whose} and a.starts_at >= ${filter.from} and a.starts_at < ${filter.to}
          and (${filter.professionalId ?? null}::uuid is null or a.professional_id = ${filter.professionalId ?? null}::uuid)
        order by a.starts_at, a.id limit 500`.execute(db.withSettings(settingsOf(viewer)));
      return rows;
    },
  };
}

export type BookingStore = ReturnType<typeof createBookingStore>;
