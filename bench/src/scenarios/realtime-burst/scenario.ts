import { createHmac, timingSafeEqual } from 'node:crypto';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import { type ServerProcess, spawnServer } from '../../server-process.js';
import type { BenchDialect, RequestHeaders } from '../../server-protocol.js';
import { randomItemId } from '../db-select/items.js';
import { BURST_APP } from './burst-app.js';

/** Subscribe/unsubscribe pairs and joined channels per client (issue 11's run: 1,000 each). */
const PAIRS = 1000;
/** Burst clients, one per node. */
const CLIENTS = 2;
/** Concurrent request loops of each probe (`/readyz`, the tenant GET). */
const PROBE_LOOPS = 2;
/** Longest wait for the burst's frames, then for its webhooks: the scenario always ends. */
const BURST_TIMEOUT_MS = 120_000;
const WEBHOOK_TIMEOUT_MS = 60_000;
const REDIS_URL = process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';

interface LatencyFigures {
  requests: number;
  failures: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

interface PhaseFigures {
  readyz: LatencyFigures;
  tenantGet: LatencyFigures;
  seconds: number;
}

/** A webhook endpoint that checks each request's `X-Pusher-Signature` and counts its events. */
async function startReceiver() {
  const events = new Map<string, number>();
  let requests = 0;
  let invalid = 0;
  const server: Server = createServer((incoming, response) => {
    const chunks: Buffer[] = [];
    incoming.on('data', (chunk: Buffer) => chunks.push(chunk));
    incoming.on('end', () => {
      const body = Buffer.concat(chunks);
      const expected = createHmac('sha256', BURST_APP.secret).update(body).digest();
      const given = Buffer.from(String(incoming.headers['x-pusher-signature'] ?? ''), 'hex');
      requests++;
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) invalid++;
      else
        for (const event of (JSON.parse(body.toString()) as { events: { name: string; channel: string }[] })
          .events) {
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
  const duplicates = () => [...events.values()].filter((times) => times > 1).length;
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks`,
    count,
    duplicates,
    stats: () => ({ requests, invalid }),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

function percentile(sorted: number[], fraction: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] as number;
}

/**
 * Sends GETs back to back on `PROBE_LOOPS` keep-alive connections until `until` resolves, and
 * returns the latency of the answers (failures: non-2xx and errors, counted apart).
 */
async function probe(
  baseUrl: string,
  path: () => string,
  headers: RequestHeaders,
  until: Promise<unknown>,
): Promise<LatencyFigures> {
  const agent = new Agent({ keepAlive: true, maxSockets: PROBE_LOOPS });
  const latencies: number[] = [];
  let failures = 0;
  let done = false;
  void until.finally(() => {
    done = true;
  });
  const once = () =>
    new Promise<void>((resolve) => {
      const started = performance.now();
      const call = request(`${baseUrl}${path()}`, { agent, headers }, (response) => {
        response.resume();
        response.on('end', () => {
          if ((response.statusCode ?? 500) < 300) latencies.push(performance.now() - started);
          else failures++;
          resolve();
        });
      });
      call.on('error', () => {
        failures++;
        resolve();
      });
      call.end();
    });
  await Promise.all(
    Array.from({ length: PROBE_LOOPS }, async () => {
      while (!done) await once();
    }),
  );
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    requests: latencies.length,
    failures,
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
    maxMs: latencies.at(-1) ?? Number.NaN,
  };
}

async function measurePhase(node: ServerProcess, until: Promise<unknown>): Promise<PhaseFigures> {
  const started = performance.now();
  const [readyz, tenantGet] = await Promise.all([
    probe(node.url, () => '/readyz', {}, until),
    probe(node.url, () => `/tenant-items/${randomItemId()}`, node.requestHeaders, until),
  ]);
  return { readyz, tenantGet, seconds: (performance.now() - started) / 1000 };
}

/**
 * One burst client: `PAIRS` subscribe/unsubscribe pairs, then `PAIRS` channels joined, each
 * frame sent at once (handled in order by the node), then closed. Resolves once closed.
 */
async function burstClient(node: ServerProcess, client: number): Promise<void> {
  const socket = new WebSocket(`${node.url.replace('http', 'ws')}/app/${BURST_APP.key}?protocol=7`);
  let succeeded = 0;
  const allJoined = new Promise<void>((resolve, reject) => {
    socket.on('message', (raw) => {
      const frame = JSON.parse(raw.toString()) as { event: string };
      if (frame.event === 'pusher:connection_established') {
        const send = (event: string, channel: string) =>
          socket.send(JSON.stringify({ event, data: { channel } }));
        for (let index = 0; index < PAIRS; index++) {
          send('pusher:subscribe', `burst-${client}-pair-${index}`);
          send('pusher:unsubscribe', `burst-${client}-pair-${index}`);
        }
        for (let index = 0; index < PAIRS; index++) send('pusher:subscribe', `burst-${client}-join-${index}`);
      }
      if (frame.event === 'pusher_internal:subscription_succeeded' && ++succeeded === 2 * PAIRS) resolve();
    });
    socket.on('error', reject);
    socket.on('close', () => reject(new Error(`burst client ${client} closed after ${succeeded} answers`)));
  });
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    allJoined,
    new Promise((_resolve, reject) => {
      timer = setTimeout(() => reject(new Error('burst did not finish in time')), BURST_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(timer));
  await new Promise<void>((resolve) => {
    socket.once('close', () => resolve());
    socket.close();
  });
}

function latencyLine(label: string, idle: LatencyFigures, burst: LatencyFigures): string {
  const ratio = burst.p99Ms / idle.p99Ms;
  return `  ${label.padEnd(12)} idle p50 ${idle.p50Ms.toFixed(2)} ms  p99 ${idle.p99Ms.toFixed(2)} ms (${idle.requests} req, ${idle.failures} failed)  burst p50 ${burst.p50Ms.toFixed(2)} ms  p99 ${burst.p99Ms.toFixed(2)} ms  max ${burst.maxMs.toFixed(1)} ms (${burst.requests} req, ${burst.failures} failed)  p99 ratio ${ratio.toFixed(2)}`;
}

/**
 * `/readyz` and a tenant-scoped GET on one node, measured idle and then during a realtime burst
 * on two nodes (Postgres + Redis): two clients, one per node, each doing 1,000
 * subscribe/unsubscribe pairs and joining 1,000 channels, then leaving. Every webhook of the
 * burst is counted at a receiver that checks signatures: 4,000 `channel_occupied` and 4,000
 * `channel_vacated` are expected, each once.
 */
export const realtimeBurst: CustomScenario = {
  kind: 'custom',
  name: 'realtime-burst',
  description:
    '/readyz and GET /tenant-items/:id latency idle vs during a realtime burst on two nodes (2 × 1,000 subscribe/unsubscribe pairs + 2 × 1,000 joins), webhooks counted exactly',
  dialects: ['postgres'],
  async run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult> {
    const receiver = await startReceiver();
    const nodes: ServerProcess[] = [];
    try {
      // One after the other: the first applies the migrations and seeds.
      for (let index = 0; index < CLIENTS; index++) {
        nodes.push(
          await spawnServer({
            label: `socle-${index + 1}`,
            entry: new URL('./socle-server.js', import.meta.url),
            settings: {
              dialect,
              databaseUrl: settings.databaseUrl,
              poolMax: settings.poolMax,
              redisUrl: REDIS_URL,
              webhookUrl: receiver.url,
            },
            signal: settings.signal,
            startTimeoutSeconds: settings.startTimeoutSeconds,
          }),
        );
      }
      const measured = nodes[0] as ServerProcess;
      settings.progress(`realtime-burst: idle for ${settings.durationSeconds} s`);
      const idle = await measurePhase(
        measured,
        new Promise((resolve) => setTimeout(resolve, settings.durationSeconds * 1000)),
      );
      settings.progress('realtime-burst: burst');
      const burstStarted = performance.now();
      const burst = Promise.all(nodes.map((node, client) => burstClient(node, client)));
      const during = await measurePhase(measured, burst);
      await burst;
      const burstSeconds = (performance.now() - burstStarted) / 1000;

      const expected = CLIENTS * 2 * PAIRS;
      const deadline = Date.now() + WEBHOOK_TIMEOUT_MS;
      while (
        (receiver.count('channel_occupied') < expected || receiver.count('channel_vacated') < expected) &&
        Date.now() < deadline
      )
        await new Promise((resolve) => setTimeout(resolve, 100));
      const deliveredSeconds = (performance.now() - burstStarted) / 1000;
      // Late duplicates would show here.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      const webhooks = {
        expectedEach: expected,
        channelOccupied: receiver.count('channel_occupied'),
        channelVacated: receiver.count('channel_vacated'),
        duplicates: receiver.duplicates(),
        ...receiver.stats(),
        deliveredSeconds,
      };
      const exact =
        webhooks.channelOccupied === expected &&
        webhooks.channelVacated === expected &&
        webhooks.duplicates === 0 &&
        webhooks.invalid === 0;
      const text = [
        `realtime-burst (${dialect} + redis, 2 nodes, burst ${burstSeconds.toFixed(2)} s)`,
        latencyLine('/readyz', idle.readyz, during.readyz),
        latencyLine('tenant GET', idle.tenantGet, during.tenantGet),
        `  webhooks     channel_occupied ${webhooks.channelOccupied}/${expected}  channel_vacated ${webhooks.channelVacated}/${expected}  in ${webhooks.requests} requests, ${webhooks.invalid} bad signatures, ${webhooks.duplicates} duplicates, all delivered ${deliveredSeconds.toFixed(2)} s after the burst began: ${exact ? 'exact' : 'NOT exact'}`,
      ].join('\n');
      return {
        scenario: 'realtime-burst',
        dialect,
        text,
        figures: { idle, during, burstSeconds, webhooks, exact },
      };
    } finally {
      await Promise.all(nodes.map((node) => node.stop()));
      await receiver.close();
    }
  },
};
