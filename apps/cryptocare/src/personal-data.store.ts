import { type Database, type PrivacySubject, withOwnerTransaction } from 'socle';

/**
 * What CryptoCare holds about a person, across every practice, as the owner role (beneath
 * row-level security): for export and erasure.
 */
export function createPersonalDataStore(db: Pick<Database, 'withConnection'>) {
  return {
    exportOf: (subject: PrivacySubject) =>
      withOwnerTransaction(db, async (connection) => {
        const appointments = await connection.query(
          `select id, tenant_id as "orgId", professional_id as "professionalId", starts_at as "startsAt",
                  ends_at as "endsAt", status, price_chf_cents as "priceChfCents", invoice_id as "invoiceId",
                  paid_at as "paidAt", zoom_join_url as "zoomJoinUrl", created_at as "createdAt"
             from cryptocare.appointments where patient_id = $1 order by starts_at, id`,
          [subject.userId],
        );
        const profile = await connection.query(
          `select id, display_name as "displayName", specialties, languages, price_chf_cents as "priceChfCents",
                  time_zone as "timeZone", created_at as "createdAt"
             from cryptocare.professionals where user_id = $1`,
          [subject.userId],
        );
        return { appointments: appointments.rows, professionalProfile: profile.rows[0] ?? null };
      }),

    /**
     * Frees the person's future slots and pseudonymizes their appointments: the rows stay (dates,
     * prices, invoices: accounting law), without the person. Consultation notes stay with the
     * practice (medical records it must keep), linked to an appointment that no longer names them.
     */
    erase: (subject: PrivacySubject, at: Date) =>
      withOwnerTransaction(db, async (connection) => {
        await connection.query(
          `update cryptocare.appointments set status = 'cancelled', updated_at = $2
            where patient_id = $1 and status in ('held', 'confirmed') and starts_at > $2`,
          [subject.userId, at],
        );
        await connection.query('update cryptocare.appointments set patient_id = null where patient_id = $1', [
          subject.userId,
        ]);
      }),
  };
}
