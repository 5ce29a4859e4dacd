import { randomUUID } from 'node:crypto';
import {
  defineJob,
  defineModule,
  defineProvider,
  defineSettings,
  type IdentityServices,
  type MailServices,
  type OutboundServices,
  type Payment,
  type PaymentsServices,
  postponeJob,
  type Realtime,
  type SettingValues,
  type SetupContext,
  setting,
  type Transaction,
  Type,
} from 'socle';
import { type AppointmentEvent, createBookingService } from './booking.service.js';
import { type Appointment, createBookingStore } from './booking.store.js';
import { registerCryptoCareRoutes } from './cryptocare.routes.js';
import { createDirectoryService } from './directory.service.js';
import { createDirectoryStore } from './directory.store.js';
import { createMeetingService } from './meetings.service.js';
import { createMeetingStore } from './meetings.store.js';
import { createNoteService } from './notes.service.js';
import { createNoteStore } from './notes.store.js';
import { createPersonalDataStore } from './personal-data.store.js';
import { createReminderService } from './reminders.service.js';
import { createReminderStore } from './reminders.store.js';

export const cryptocareSettings = defineSettings({
  holdMinutes: setting.integer({
    env: 'CRYPTOCARE_HOLD_MINUTES',
    description: 'Minutes a booked slot stays held for its payment before it is released',
    default: 15,
    min: 1,
    max: 24 * 60,
  }),
  noticeHours: setting.integer({
    env: 'CRYPTOCARE_NOTICE_HOURS',
    description:
      'Hours before a confirmed appointment after which the patient can no longer cancel or move it',
    default: 24,
    min: 0,
    max: 24 * 30,
  }),
  searchDays: setting.integer({
    env: 'CRYPTOCARE_SEARCH_DAYS',
    description: 'Days ahead searches and slot listings look for free slots',
    default: 14,
    min: 1,
    max: 90,
  }),
  zoomApiUrl: setting.string({
    env: 'CRYPTOCARE_ZOOM_API_URL',
    description: "Zoom's REST API",
    default: 'https://api.zoom.us/v2',
  }),
  zoomTokenUrl: setting.string({
    env: 'CRYPTOCARE_ZOOM_TOKEN_URL',
    description: "Zoom's OAuth token endpoint (Server-to-Server OAuth app)",
    default: 'https://zoom.us/oauth/token',
  }),
  zoomAccountId: setting.optionalString({
    env: 'CRYPTOCARE_ZOOM_ACCOUNT_ID',
    description: 'Account ID of the Zoom Server-to-Server OAuth app',
  }),
  zoomClientId: setting.optionalString({
    env: 'CRYPTOCARE_ZOOM_CLIENT_ID',
    description: 'Client ID of the Zoom Server-to-Server OAuth app',
  }),
  zoomClientSecret: setting.secret({
    env: 'CRYPTOCARE_ZOOM_CLIENT_SECRET',
    description: 'Client secret of the Zoom Server-to-Server OAuth app',
  }),
  zoomHosts: setting.list({
    env: 'CRYPTOCARE_ZOOM_HOSTS',
    description: 'Zoom users (ids or emails) meetings are spread over, each within its daily limit',
    default: ['me'],
  }),
  zoomMeetingsPerHostPerDay: setting.integer({
    env: 'CRYPTOCARE_ZOOM_MEETINGS_PER_HOST_PER_DAY',
    description: "Meetings created per Zoom host and UTC day (Zoom's limit: about 100)",
    default: 100,
    min: 1,
    max: 10_000,
  }),
});

export type CryptoCareSettings = SettingValues<typeof cryptocareSettings>;

export interface CryptoCareOptions {
  /** The payments module's provider that opens the invoices (default: its first that does). */
  readonly paymentProvider?: 'btcpay' | 'swiss-bitcoin-pay' | (string & {});
}

const ORDER_PREFIX = 'appointment:';

/** The appointment an invoice was opened for (`appointment:<id>`), if it is one of ours. */
const appointmentOf = (payment: Payment) =>
  payment.orderId?.startsWith(ORDER_PREFIX) ? payment.orderId.slice(ORDER_PREFIX.length) : undefined;

const AppointmentJob = Type.Object({
  appointmentId: Type.String({ format: 'uuid' }),
  orgId: Type.String({ format: 'uuid' }),
});

const DAY_MS = 24 * 60 * 60 * 1000;

function buildServices(context: SetupContext<unknown, CryptoCareSettings>, options: CryptoCareOptions) {
  const { db, clock, settings } = context;
  const realtime = context.servicesOf<Realtime>('realtime');
  const { outbox } = context.servicesOf<MailServices>('mail');
  const identity = context.servicesOf<IdentityServices>('identity');
  const { payments } = context.servicesOf<PaymentsServices>('payments');
  const directoryStore = createDirectoryStore(db);
  const bookings = createBookingStore(db);

  // The patient's page listens on their own channel, the practice's agenda on the organization's
  // (both private, authorized by Socle's built-in rules).
  async function announce(appointment: Appointment, event: AppointmentEvent) {
    const data = presentForChannel(appointment);
    const channels = [`private-org-${appointment.orgId}-agenda`];
    if (appointment.patientId !== null) channels.push(`private-user-${appointment.patientId}`);
    await Promise.all(channels.map((channel) => realtime.publish({ channel, event, data })));
  }

  async function mailTo(
    trx: Transaction<unknown>,
    userId: string | null,
    subject: string,
    text: string,
    key: string,
  ) {
    if (userId === null) return;
    const email = await identity.findEmail(userId, trx);
    if (email !== undefined) await outbox.enqueue(trx, { to: email, subject, text, idempotencyKey: key });
  }

  const subjects: Partial<Record<AppointmentEvent, string>> = {
    'appointment.confirmed': 'Your consultation is confirmed',
    'appointment.cancelled': 'Your consultation is cancelled',
    'appointment.rescheduled': 'Your consultation was moved',
  };
  const mailPatient = (trx: Transaction<unknown>, appointment: Appointment, event: AppointmentEvent) =>
    mailTo(
      trx,
      appointment.patientId,
      subjects[event] ?? 'Your consultation',
      `Consultation on ${appointment.startsAt.toISOString()} (UTC): ${event.replace('appointment.', '')}.`,
      `cryptocare:${event}:${appointment.id}:${appointment.startsAt.toISOString()}`,
    );

  const zoom = context.servicesOf<OutboundServices>('outbound').outbound.client(
    defineProvider('zoom', {
      baseUrl: settings.zoomApiUrl,
      timeoutMs: { attemptMs: 2_000, totalMs: 5_000 },
      retry: { maxAttempts: 3, initialDelayMs: 200, maxDelayMs: 2_000 },
      breaker: { failureRate: 0.5, windowMs: 30_000, minimumCalls: 5, halfOpenAfterMs: 15_000 },
      rateLimit: { limit: 30, windowMs: 1_000 },
      concurrency: 20,
      ...(settings.zoomClientId !== undefined && settings.zoomClientSecret !== undefined
        ? {
            auth: {
              type: 'client-credentials' as const,
              tokenUrl: settings.zoomTokenUrl,
              clientId: settings.zoomClientId,
              clientSecret: settings.zoomClientSecret,
              form: { grant_type: 'account_credentials', account_id: settings.zoomAccountId ?? '' },
            },
          }
        : {}),
    }),
  );

  const booking = createBookingService({
    store: bookings,
    directory: directoryStore,
    clock,
    jobs: context.jobs,
    holdMinutes: settings.holdMinutes,
    noticeHours: settings.noticeHours,
    async openInvoice(request) {
      // Invoices belong to the practice (the organization): opened in its scope, for the patient.
      return context.scope.run({ tenantId: request.orgId, userId: request.patientId }, async () => {
        const invoice = await payments.createInvoice({
          orderId: `${ORDER_PREFIX}${request.appointmentId}`,
          amount: request.amountChfCents,
          currency: 'CHF',
          userId: request.patientId,
          description: request.description,
          metadata: { appointmentId: request.appointmentId },
          expiresInSeconds: request.holdMinutes * 60,
          provider: options.paymentProvider,
        });
        return {
          invoiceId: invoice.id,
          paymentUri: invoice.paymentUri ?? '',
          amountSats: Number(invoice.amountSats ?? 0n),
          expiresAt: invoice.expiresAt ?? new Date(clock.now().getTime() + request.holdMinutes * 60_000),
          checkoutUrl: invoice.checkoutUrl,
          qrSvg: (await payments.invoiceQrCode(invoice, 'svg')) as string,
        };
      });
    },
    announce,
    mailPatient,
  });
  // The processor's verdict is applied in the transaction that records its event (once, whatever
  // the redeliveries and their order); the patient and the practice are told once it committed.
  payments.on('payment.succeeded', async (trx, payment, afterCommit) => {
    const appointmentId = appointmentOf(payment);
    if (appointmentId === undefined) return;
    const { appointment, event } = await booking.applyPayment(trx, {
      appointmentId,
      orgId: payment.orgId,
      invoiceId: payment.id,
      paidChfCents: payment.currency === 'CHF' ? Number(payment.amount) : 0,
      // On Socle's clock, when the settlement is applied: the hold and its invoice expire together,
      // so a settlement applied after the hold ended is a late payment.
      paidAt: clock.now(),
    });
    if (appointment !== undefined && event !== undefined) afterCommit(() => announce(appointment, event));
  });
  // Less than the price came: flagged with what is missing, for the patient and the practice.
  for (const name of ['payment.partially_paid', 'payment.underpaid'] as const)
    payments.on(name, async (trx, payment, afterCommit) => {
      const appointmentId = appointmentOf(payment);
      if (appointmentId === undefined) return;
      const received = Number(payment.receivedSats ?? 0n);
      const flagged = await booking.applyUnderpayment(trx, {
        appointmentId,
        receivedSats: received,
        missingSats: Math.max(0, Number(payment.amountSats ?? 0n) - received),
        final: name === 'payment.underpaid',
      });
      if (flagged !== undefined) afterCommit(() => announce(flagged, 'appointment.payment_flagged'));
    });
  payments.on('invoice.expired', async (trx, payment, afterCommit) => {
    const appointmentId = appointmentOf(payment);
    if (appointmentId === undefined) return;
    const expired = await booking.expireInvoiceHold(trx, appointmentId);
    if (expired !== undefined) afterCommit(() => announce(expired, 'appointment.expired'));
  });

  const meetings = createMeetingService({
    zoom,
    store: createMeetingStore(db),
    bookings,
    clock,
    hosts: settings.zoomHosts,
    meetingsPerHostPerDay: settings.zoomMeetingsPerHostPerDay,
    announce,
    async mailParties(trx, appointment) {
      const text = `Your consultation on ${appointment.startsAt.toISOString()} (UTC): join at ${appointment.zoomJoinUrl}`;
      await mailTo(
        trx,
        appointment.patientId,
        'Your consultation link',
        text,
        `cryptocare:zoom:${appointment.id}`,
      );
      await mailTo(
        trx,
        await directoryStore.professionalUserId(trx, appointment.professionalId),
        'Consultation link',
        text,
        `cryptocare:zoom-pro:${appointment.id}`,
      );
    },
  });
  return {
    directory: createDirectoryService({
      store: directoryStore,
      clock,
      cache: context.sharedState.open({ area: 'cryptocare', nodeId: randomUUID() }),
      searchDays: settings.searchDays,
    }),
    booking,
    meetings,
    notes: createNoteService({ store: createNoteStore(db), secrets: context.secrets, clock }),
    reminders: createReminderService({ store: createReminderStore(db), db, clock, remind: mailTo }),
  };
}

/** What CryptoCare gives apps and tests (`socle.servicesOf(cryptocare)`). */
export type CryptoCareServices = ReturnType<typeof buildServices>;

/** An appointment as the realtime channels carry it (no personal data beyond the ids). */
export function presentForChannel(appointment: Appointment) {
  return {
    id: appointment.id,
    professionalId: appointment.professionalId,
    startsAt: appointment.startsAt.toISOString(),
    endsAt: appointment.endsAt.toISOString(),
    status: appointment.status,
    paymentFlag: appointment.paymentFlag,
    receivedSats: appointment.receivedSats,
    missingSats: appointment.missingSats,
    zoomJoinUrl: appointment.zoomJoinUrl,
  };
}

/**
 * CryptoCare: find a professional near you, book a slot (held until paid, never double-booked),
 * pay in Bitcoin through the payments module, get a Zoom link; the practice's agenda and the
 * patient's page update live; consultation notes sealed per practice, their reads logged.
 *
 * @example
 * const socle = await createSocle({ config, modules: [...createBuiltInModules(), createCryptoCareModule()] });
 */
export function createCryptoCareModule(options: CryptoCareOptions = {}) {
  return defineModule({
    name: 'cryptocare',
    dependsOn: ['identity', 'tenancy', 'mail', 'realtime', 'outbound', 'payments'],
    migrations: new URL('./migrations/', import.meta.url),
    settings: cryptocareSettings,
    // The web client (plain HTML and ES modules), at /apps/cryptocare/.
    web: { root: new URL('../web/', import.meta.url) },
    setup: (context: SetupContext<unknown, CryptoCareSettings>) => buildServices(context, options),

    routes(app, { services }) {
      registerCryptoCareRoutes(app, services);
    },

    jobs: {
      // Enqueued with each hold, due at its expiry.
      expireHold: defineJob({
        schema: AppointmentJob,
        queue: 'high',
        async handler({ payload }, { booking }: CryptoCareServices) {
          const { remainingMs } = await booking.expireHold(payload.appointmentId, payload.orgId);
          if (remainingMs > 0) throw postponeJob(new Error('The hold has not expired yet'), remainingMs);
        },
      }),
      // Enqueued when an appointment is confirmed or moved; waits while Zoom is down (an open
      // circuit postpones it without spending attempts) and retries other failures for hours.
      syncMeeting: defineJob({
        schema: AppointmentJob,
        queue: 'high',
        maxAttempts: 20,
        backoff: { initialDelayMs: 2_000, maxDelayMs: 10 * 60_000 },
        async handler({ payload, signal }, { meetings }: CryptoCareServices) {
          try {
            await meetings.sync(payload.appointmentId, payload.orgId, signal);
          } catch (error) {
            if ((error as { code?: string }).code === 'cryptocare.zoom_hosts_exhausted')
              throw postponeJob(error as Error, DAY_MS - (Date.now() % DAY_MS) + 60_000);
            throw error;
          }
        },
      }),
      remind: defineJob({
        cron: '*/5 * * * *',
        async handler({ log }, { reminders }: CryptoCareServices) {
          const sent = await reminders.sendDue();
          if (sent > 0) log.info({ sent }, 'Consultation reminders queued');
        },
      }),
    },

    privacy: ({ db, clock }) => {
      const store = createPersonalDataStore(db);
      return {
        exportSubject: (subject) => store.exportOf(subject),
        eraseSubject: (subject) => store.erase(subject, clock.now()),
      };
    },
  });
}

export type CryptoCareModule = ReturnType<typeof createCryptoCareModule>;
