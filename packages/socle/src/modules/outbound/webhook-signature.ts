import { createHmac, timingSafeEqual } from 'node:crypto';
import { outboundErrors } from './outbound.errors.js';

/** What a verified webhook delivery says about itself. */
export interface VerifiedWebhook {
  /** `webhook-id`: the same on every retry of one message, so the key to apply it once. */
  readonly id: string;
  readonly timestamp: Date;
}

export interface StandardWebhookCheck {
  /** Who is said to send it, for the error (`replicate`). */
  readonly provider: string;
  /** The signing secret, `whsec_<base64>` (Replicate: `GET /v1/webhooks/default/secret`). */
  readonly secret: string;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  /** The body exactly as received: parsing and serialising again changes the signed bytes. */
  readonly body: Buffer | string;
  readonly now: Date;
  /** Deliveries signed further than this from `now` are refused (replays); default 300 s. */
  readonly toleranceSeconds?: number;
}

const header = (headers: StandardWebhookCheck['headers'], name: string) => {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
};

/**
 * Checks a delivery signed the Standard Webhooks way (Replicate, Svix and others): `webhook-id`,
 * `webhook-timestamp` (Unix seconds, within the tolerance of now) and `webhook-signature`, a
 * space-separated list of `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, one of which
 * must match (compared in constant time). Throws `outbound.webhook_signature_invalid` (400).
 *
 * @example
 * const delivery = verifyStandardWebhook({ provider: 'replicate', secret, headers: request.headers, body: rawBody, now: clock.now() });
 */
export function verifyStandardWebhook(check: StandardWebhookCheck): VerifiedWebhook {
  const refuse = (reason: string) => outboundErrors.webhookSignatureInvalid(check.provider, reason);
  const id = header(check.headers, 'webhook-id');
  const timestamp = header(check.headers, 'webhook-timestamp');
  const signatures = header(check.headers, 'webhook-signature');
  if (id === undefined || id === '' || timestamp === undefined || signatures === undefined)
    throw refuse('webhook-id, webhook-timestamp and webhook-signature are required');
  if (!/^\d{1,12}$/.test(timestamp)) throw refuse('webhook-timestamp is not Unix seconds');
  const sentAt = Number(timestamp);
  if (Math.abs(check.now.getTime() / 1000 - sentAt) > (check.toleranceSeconds ?? 300))
    throw refuse('webhook-timestamp is too far from now');
  const key = Buffer.from(check.secret.startsWith('whsec_') ? check.secret.slice(6) : check.secret, 'base64');
  const expected = createHmac('sha256', key)
    .update(`${id}.${timestamp}.`)
    .update(typeof check.body === 'string' ? Buffer.from(check.body, 'utf8') : check.body)
    .digest();
  const matches = signatures.split(' ').some((entry) => {
    const [version, signature] = entry.split(',', 2);
    if (version !== 'v1' || signature === undefined) return false;
    const given = Buffer.from(signature, 'base64');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
  if (!matches) throw refuse('no signature matches');
  return { id, timestamp: new Date(sentAt * 1000) };
}

/** Signs `body` the Standard Webhooks way: the headers a sender (or a fake) adds. */
export function signStandardWebhook(
  secret: string,
  id: string,
  timestamp: Date,
  body: string,
): Record<'webhook-id' | 'webhook-timestamp' | 'webhook-signature', string> {
  const seconds = String(Math.floor(timestamp.getTime() / 1000));
  const key = Buffer.from(secret.startsWith('whsec_') ? secret.slice(6) : secret, 'base64');
  const signature = createHmac('sha256', key).update(`${id}.${seconds}.${body}`).digest('base64');
  return { 'webhook-id': id, 'webhook-timestamp': seconds, 'webhook-signature': `v1,${signature}` };
}
