/**
 * Child process: the hand-written baseline of the payments webhook — bare Fastify 5 and a `pg`
 * Pool: the raw body's Stripe signature checked (HMAC-SHA256 of `t.body`, constant-time), then the
 * event row inserted by its id (`on conflict do nothing`), 200. No ledger, no realtime message:
 * what Socle does on top is the price of its guarantees.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import Fastify from 'fastify';
import pg from 'pg';
import { runServerChild } from '../../server-child.js';
import { WEBHOOK_SECRET } from './shared.js';

const TOLERANCE_SECONDS = 300;

function verified(body: Buffer, header: string): boolean {
  const parts = header.split(',').map((part) => part.split('=') as [string, string]);
  const timestamp = Number(parts.find(([key]) => key === 't')?.[1]);
  if (!Number.isFinite(timestamp) || Math.abs(Date.now() / 1000 - timestamp) > TOLERANCE_SECONDS)
    return false;
  const expected = createHmac('sha256', WEBHOOK_SECRET).update(`${timestamp}.`).update(body).digest();
  return parts.some(([key, value]) => {
    if (key !== 'v1') return false;
    const given = Buffer.from(value, 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  });
}

runServerChild(async (settings) => {
  if (settings.databaseUrl === undefined) throw new Error('payments runs on Postgres only');
  const pool = new pg.Pool({ connectionString: settings.databaseUrl, max: settings.poolMax });
  pool.on('error', (error) => console.error('idle pg client failed:', error));
  await pool.query(`create table if not exists bench_payment_events (
    provider text not null, event_id text not null, type text not null, payload jsonb not null,
    received_at timestamptz not null default now(), primary key (provider, event_id))`);
  const app = Fastify({ logger: false });
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) =>
    done(null, body),
  );
  app.post('/payments/webhooks/stripe', async (request, reply) => {
    const body = request.body as Buffer;
    if (!verified(body, String(request.headers['stripe-signature'] ?? '')))
      return reply.code(400).send({ error: 'bad signature' });
    const event = JSON.parse(body.toString('utf8')) as { id: string; type: string };
    const inserted = await pool.query({
      name: 'insert_event',
      text: `insert into bench_payment_events (provider, event_id, type, payload) values ('stripe', $1, $2, $3)
             on conflict do nothing`,
      values: [event.id, event.type, body.toString('utf8')],
    });
    return { received: true, duplicate: inserted.rowCount === 0 };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    url,
    async close() {
      await app.close();
      await pool.end();
    },
  };
});
