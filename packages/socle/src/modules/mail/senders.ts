import { createTransport } from 'nodemailer';
import type { Logger } from '../../kernel/index.js';

/** One mail as a sender receives it: addressed, with the outbox row's id. */
export interface OutgoingMail {
  /** The outbox row's id; also the left part of the Message-ID, so a receiver can spot a resend. */
  readonly id: string;
  readonly from: string;
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html: string | undefined;
}

/**
 * Hands a mail to whatever delivers it. `send` resolves once the mail is accepted and rejects with
 * an error whose message is safe to store and log (no credentials). Pass your own to
 * `createMailModule({ sender })` to deliver through an HTTP API instead of SMTP.
 */
export interface MailSender {
  /** For logs: `log`, `smtp`, or your own. */
  readonly name: string;
  send(mail: OutgoingMail): Promise<void>;
  /** Releases connections; called when the module stops. */
  close?(): Promise<void>;
}

/**
 * The embedded default: writes each mail (recipient, subject and text body) to the log at info
 * level instead of delivering it, so a developer running Socle without SMTP sees the links
 * (verification, password reset) a mail would carry. The log then holds those secrets: configure
 * `SMTP_URL` anywhere else.
 */
export function createLogSender(log: Logger): MailSender {
  return {
    name: 'log',
    async send(mail) {
      log.info(
        { mailId: mail.id, from: mail.from, to: mail.to, subject: mail.subject, text: mail.text },
        `Mail to ${mail.to} (not delivered: SMTP_URL is not set): ${mail.subject}`,
      );
    },
  };
}

export interface SmtpSenderOptions {
  /** `smtp://user:pass@host:587` (STARTTLS when offered) or `smtps://…` (TLS from the start). */
  readonly url: string;
  /** Per-connection timeouts; the outbox lease must cover a batch of sends at this bound. */
  readonly timeoutMs?: number;
}

/** Default bound of one SMTP step (connect, greeting, any reply): nodemailer's are minutes. */
const SMTP_TIMEOUT_MS = 15_000;

/**
 * Delivers through an SMTP server with nodemailer, one connection per mail (no pool: a batch is
 * small and a stale pooled connection would turn into a retry). Error messages never carry the
 * URL or its credentials: they end up in the outbox's `last_error` and in logs.
 */
export function createSmtpSender(options: SmtpSenderOptions): MailSender {
  const timeout = options.timeoutMs ?? SMTP_TIMEOUT_MS;
  const transport = createTransport({
    url: options.url,
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    dnsTimeout: timeout,
  });
  return {
    name: 'smtp',
    async send(mail) {
      try {
        await transport.sendMail({
          from: mail.from,
          to: mail.to,
          subject: mail.subject,
          text: mail.text,
          ...(mail.html === undefined ? {} : { html: mail.html }),
          messageId: `<${mail.id}@${domainOf(mail.from)}>`,
        });
      } catch (error) {
        throw new Error(
          redactCredentials(error instanceof Error ? error.message : String(error), options.url),
        );
      }
    },
    async close() {
      transport.close();
    },
  };
}

/**
 * The message with the SMTP URL, its user and its password (raw or percent-encoded) replaced by
 * `[redacted]`; exported for its unit test.
 */
export function redactCredentials(message: string, smtpUrl: string): string {
  const secrets = [smtpUrl];
  try {
    const parsed = new URL(smtpUrl);
    for (const part of [parsed.username, parsed.password]) {
      if (part !== '') secrets.push(part, decodeURIComponent(part));
    }
  } catch {
    // the configuration validated it; nothing more to hide
  }
  let result = message;
  // Longest first, so that replacing a password inside the URL does not leave the rest of the URL.
  for (const secret of [...new Set(secrets)].sort((a, b) => b.length - a.length)) {
    result = result.replaceAll(secret, '[redacted]');
  }
  return result;
}

/** The domain of a From such as `Acme <no-reply@acme.example>`, for Message-IDs. */
export function domainOf(from: string): string {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(from);
  return match?.[1] ?? 'localhost';
}
