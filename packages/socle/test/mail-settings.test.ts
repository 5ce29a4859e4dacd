import { describe, expect, it } from 'vitest';
import { loadConfig } from '../src/index.js';
import { createMailModule, DEFAULT_MAIL_BACKOFF } from '../src/modules/mail/index.js';

const mailSettingsOf = (env: Record<string, string>) =>
  loadConfig({ env, configFile: false, modules: [createMailModule()] }).moduleSettings.mail;

let counter = 0;
const _uniqueAddress = () => `user.${Date.now().toString(36)}.${++counter}@example.com`;

describe('Mail settings', () => {
  it('defaults to the log sender, a local From and 10 attempts, and never echoes a bad SMTP_URL', () => {
    expect(mailSettingsOf({})).toMatchObject({
      smtpUrl: undefined,
      from: 'Socle <no-reply@localhost>',
      maxAttempts: 10,
    });
    expect(
      mailSettingsOf({ SMTP_URL: 'smtp://user:pw@smtp.example:587', MAIL_FROM: 'Acme <hi@acme.example>' }),
    ).toMatchObject({
      smtpUrl: 'smtp://user:pw@smtp.example:587',
      from: 'Acme <hi@acme.example>',
    });
    let message = '';
    try {
      mailSettingsOf({ SMTP_URL: 'http://user:hunter2@smtp.example' });
    } catch (error) {
      message = (error as Error).message;
    }
    expect(message).toMatch(/SMTP_URL must be an smtp:\/\/ or smtps:\/\/ URL$/m);
    expect(message).not.toContain('hunter2');
  });

  it('declares delivery as a job of the high queue, retried with the backoff it is given', () => {
    const mail = createMailModule();
    // The default (30 s, stretched at random, up to 4 h) is what the delivery test below observes.
    expect(mail.jobs?.deliver).toMatchObject({ queue: 'high', backoff: DEFAULT_MAIL_BACKOFF });
    const custom = { initialDelayMs: 5_000, maxDelayMs: 60_000 };
    expect(createMailModule({ backoff: custom }).jobs?.deliver?.backoff).toEqual(custom);
    expect(createMailModule({ backoff: false }).jobs?.deliver?.backoff).toBe(false);
    expect(mail.jobs?.purgeFinished?.cron).toBe('17 3 * * *');
  });
});
