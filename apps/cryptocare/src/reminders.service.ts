import type { Clock, Database, Transaction } from 'socle';
import { tenantSettings } from 'socle';
import type { ReminderKind, ReminderStore } from './reminders.store.js';

/**
 * Reminders 24 hours and 1 hour before a confirmed consultation, queued by a cron job every five
 * minutes: each one marked sent in the transaction that queues its mail, so a second run, node or
 * attempt never sends it twice.
 */
export function createReminderService(options: {
  store: ReminderStore;
  db: Database;
  clock: Clock;
  remind: (
    trx: Transaction<unknown>,
    userId: string | null,
    subject: string,
    text: string,
    key: string,
  ) => Promise<void>;
}) {
  const { store, db, clock } = options;
  return {
    async sendDue(): Promise<number> {
      let sent = 0;
      for (const kind of ['24h', '1h'] as ReminderKind[]) {
        const at = clock.now();
        for (const { id, orgId } of await store.due(kind, at)) {
          await db.transaction(
            async (trx) => {
              if (!(await store.markSent(trx, id, kind, at))) return;
              const { patientId, startsAt, zoomJoinUrl } = await store.details(trx, id);
              await options.remind(
                trx,
                patientId,
                `Your consultation ${kind === '24h' ? 'tomorrow' : 'in one hour'}`,
                `Consultation at ${startsAt.toISOString()} (UTC).${zoomJoinUrl ? ` Join: ${zoomJoinUrl}` : ''}`,
                `cryptocare:reminder-${kind}:${id}:${startsAt.toISOString()}`,
              );
              sent++;
            },
            { settings: tenantSettings({ tenantId: orgId }) },
          );
        }
      }
      return sent;
    },
  };
}
