import { afterAll, beforeAll, expect, it } from 'vitest';
import { createIdentityModule } from '../src/modules/identity/index.js';
import { createMailModule, type MailServices } from '../src/modules/mail/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { deliveryJobsOf, FROM, outboxRowOf, uniqueAddress, useSmtpServer } from './support/mail-fixtures.js';

const smtp = useSmtpServer();
const { receivedFor } = smtp;

describeEachDatabase("Mail: a sign-up's verification mail through SMTP", (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [createIdentityModule({ rateLimits: false }), createMailModule()],
      config: { jobsQueues: [] },
      settings: { mail: { smtpUrl: smtp.url, from: FROM } },
    });
  });
  afterAll(() => socle?.dispose());

  it('reaches the SMTP server once its job runs, and not before, and its token verifies the address', async () => {
    const email = uniqueAddress();
    const signUp = await socle.app.inject({
      method: 'POST',
      url: '/auth/sign-up',
      payload: { email, password: 'correct horse battery staple orbit' },
    });
    expect(signUp.statusCode).toBe(201);
    const toThisUser = () => smtp.received.filter((received) => received.envelopeTo.includes(email));
    expect(toThisUser()).toEqual([]);

    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
    const [message, ...others] = toThisUser();
    expect(others).toEqual([]);
    expect(message?.headers.get('subject')).toBe('Confirm your email address');
    const token = /Your verification token: (ev_\S+)/.exec(message?.raw ?? '')?.[1];
    expect(token).toBeDefined();
    const confirmed = await socle.app.inject({
      method: 'POST',
      url: '/auth/email-verification/confirm',
      payload: { token },
    });
    expect(confirmed.statusCode).toBe(200);
  });
});

describeEachDatabase('Mail: a sender that keeps failing', (target) => {
  let socle: TestSocle;

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      // No backoff: every retry is due at once, so one runDueJobs() runs them all.
      modules: [createMailModule({ backoff: false })],
      config: { jobsQueues: [] },
      settings: { mail: { smtpUrl: smtp.url, from: FROM, maxAttempts: 3 } },
    });
  });
  afterAll(() => socle?.dispose());

  it('is retried by the engine, then dead: the job failed and the row marked failed; a retry by hand sends it', async () => {
    const { outbox } = socle.servicesOf<MailServices>('mail');
    const { id } = await socle.db.transaction((trx) =>
      outbox.enqueue(trx, { to: uniqueAddress(), subject: 'Never accepted', text: 'Body' }),
    );
    smtp.state.rejectRecipients = true;
    try {
      expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 3 });
    } finally {
      smtp.state.rejectRecipients = false;
    }
    const row = await outboxRowOf(socle, id);
    expect(row).toMatchObject({ attempts: 3, sent_at: null });
    expect(row.failed_at).toBeInstanceOf(Date);
    expect(row.last_error).toContain('550');
    const [job] = await deliveryJobsOf(socle, id);
    expect(job).toMatchObject({ state: 'failed', attempts: 3, maxAttempts: 3 });
    expect(receivedFor(id)).toEqual([]);
    // Dead means dead: nothing runs it again by itself.
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 0, failed: 0 });

    // An operator retries the dead job once the relay accepts the mailbox again.
    await socle.jobs.retry(job?.id as string, null);
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
    expect(receivedFor(id)).toHaveLength(1);
    const sent = await outboxRowOf(socle, id);
    expect(sent).toMatchObject({ failed_at: null, attempts: 4 });
    expect(sent.sent_at).toBeInstanceOf(Date);
  });
});
