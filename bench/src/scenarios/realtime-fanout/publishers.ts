import { createHash, createHmac } from 'node:crypto';
import { BENCH_APP } from './bench-app.js';

// The harness publishes; subscribers live in their own processes (subscriber-child.ts).

/** Publishes through Pusher's HTTP API, signed as the pusher SDK signs. */
export async function publishPusher(baseUrl: string, data: string): Promise<void> {
  const path = `/apps/${BENCH_APP.id}/events`;
  const body = JSON.stringify({ name: 'bench', channel: 'bench', data });
  const query = `auth_key=${BENCH_APP.key}&auth_timestamp=${Math.floor(Date.now() / 1000)}&auth_version=1.0&body_md5=${createHash('md5').update(body).digest('hex')}`;
  const signature = createHmac('sha256', BENCH_APP.secret).update(`POST\n${path}\n${query}`).digest('hex');
  const response = await fetch(`${baseUrl}${path}?${query}&auth_signature=${signature}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  });
  if (!response.ok) throw new Error(`publish answered ${response.status}: ${await response.text()}`);
}

export async function publishSocketIo(baseUrl: string, data: string): Promise<void> {
  const response = await fetch(`${baseUrl}/publish`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ data }),
  });
  if (!response.ok) throw new Error(`publish answered ${response.status}`);
}
