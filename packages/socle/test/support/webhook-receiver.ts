import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pusherServer, type testRealtimeApp } from './realtime-clients.js';

/**
 * A webhook endpoint that checks each request's Pusher signature with the official SDK and counts
 * every event it carries, per name and per channel.
 */
export async function webhookReceiver(app: ReturnType<typeof testRealtimeApp>) {
  const events = new Map<string, number>();
  let requests = 0;
  let invalid = 0;
  const server: Server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const webhook = pusherServer('http://127.0.0.1:1', app).webhook({
        headers: request.headers as Record<string, string>,
        rawBody: Buffer.concat(chunks).toString(),
      });
      requests++;
      if (!webhook.isValid()) invalid++;
      else
        for (const event of webhook.getEvents() as { name: string; channel: string }[]) {
          const key = `${event.name}:${event.channel}`;
          events.set(key, (events.get(key) ?? 0) + 1);
        }
      response.writeHead(200).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const count = (name: string) => {
    let total = 0;
    for (const [key, times] of events) if (key.startsWith(`${name}:`)) total += times;
    return total;
  };
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    events,
    count,
    stats: () => ({ requests, invalid }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
