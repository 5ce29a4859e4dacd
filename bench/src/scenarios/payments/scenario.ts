import { createHmac } from 'node:crypto';
import pg from 'pg';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { openDatabaseCpu } from '../../database-cpu.js';
import { processCpuSeconds } from '../../process-cpu.js';
import { formatProfileEntries, summarizeProfile } from '../../profile-summary.js';
import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import { type ServerProcess, spawnServer } from '../../server-process.js';
import type { BenchDialect } from '../../server-protocol.js';
import { PAYMENTS_APP, type Renewal, stripeSignature } from './shared.js';

/** Webhooks per second of the burst (the figure). */
const BURST_RATE = 500;
/** Concurrent connections of the throughput run (each waits for its answer before the next). */
const CONNECTIONS = 50;
/**
 * Loops opening an invoice and reading its QR code: one, so the figure is the creation time of
 * one invoice (the "invoice + QR < 50 ms"), not a queue behind concurrent ones.
 */
const INVOICE_LOOPS = 1;
/** Longest wait for the burst's messages once it is sent: the scenario always ends. */
const MESSAGES_TIMEOUT_MS = 120_000;
/** How long the pool's Postgres sessions may take to report their statistics (see counters). */
const STATS_SETTLE_MS = 11_000;
const GOALS = { burstP99Ms: 500, invoiceP99Ms: 50, ratio: 0.5 };

interface Latency {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}
interface BurstQueueing {
  /** Cores the server process kept busy during the burst (CPU seconds / wall seconds). */
  serverCores: number;
  /** Cores the run database's Postgres sessions kept busy during the burst. */
  postgresCores: number | undefined;
  /** Most callers seen waiting for a pooled database session (`socle_db_pool_connections{state="waiting"}`). */
  poolWaitingMax: number;
  /** Largest event-loop delay p99 the server reported (`nodejs_eventloop_lag_p99_seconds`), ms. */
  eventLoopLagP99MaxMs: number;
}
interface Throughput {
  perSecond: number;
  failures: number;
  cpuMsPerRequest: number;
  /** CPU of the run database's Postgres sessions (the server's pool) per webhook, from /proc. */
  postgresCpuMsPerRequest: number | undefined;
  /** Where the cost goes, per webhook answered (see costOf); undefined without a database. */
  perWebhook: PerWebhook | undefined;
}
/**
 * The database work per webhook of a throughput run: statements sent (round trips: Socle's
 * `socle_db_query_duration_seconds_count`, which counts every statement a session sends, BEGIN
 * and COMMIT included; undefined for the baseline, which has no /metrics), and the run
 * database's `pg_stat_database` deltas (commits, rows inserted, updated, fetched by index).
 */
interface PerWebhook {
  statements: number | undefined;
  commits: number;
  inserted: number;
  updated: number;
  fetched: number;
}
interface DatabaseCounters {
  statements: number | undefined;
  commits: number;
  inserted: number;
  updated: number;
  fetched: number;
}

/** The counters of PerWebhook now; `pg_stat_database` is read in a snapshot of its own. */
async function counters(node: ServerProcess, databaseUrl: string): Promise<DatabaseCounters> {
  let statements: number | undefined;
  try {
    const response = await fetch(`${node.url}/metrics`);
    if (response.ok) {
      const text = await response.text();
      const counts = [...text.matchAll(/^socle_db_query_duration_seconds_count\{[^}]*\} (\S+)$/gm)];
      if (counts.length > 0) statements = counts.reduce((sum, match) => sum + Number(match[1]), 0);
    }
  } catch {
    // No /metrics (the baseline): statements stay unknown.
  }
  // A backend reports its statistics at most once a second while busy and 10 s after it goes idle
  // (PGSTAT_IDLE_INTERVAL): wait so the pool's sessions have reported the work before this read.
  await new Promise((resolve) => setTimeout(resolve, STATS_SETTLE_MS));
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    // The statistics are those of the snapshot taken at the first read: clear it first.
    await client.query('select pg_stat_clear_snapshot()');
    const { rows } = await client.query<{
      commits: string;
      inserted: string;
      updated: string;
      fetched: string;
    }>(
      `select xact_commit as commits, tup_inserted as inserted, tup_updated as updated, tup_fetched as fetched
         from pg_stat_database where datname = current_database()`,
    );
    const row = rows[0];
    return {
      statements,
      commits: Number(row?.commits),
      inserted: Number(row?.inserted),
      updated: Number(row?.updated),
      fetched: Number(row?.fetched),
    };
  } finally {
    await client.end();
  }
}

function costOf(before: DatabaseCounters, after: DatabaseCounters, webhooks: number): PerWebhook {
  const per = (value: number) => Math.round((value / Math.max(1, webhooks)) * 100) / 100;
  return {
    statements:
      before.statements === undefined || after.statements === undefined
        ? undefined
        : per(after.statements - before.statements),
    commits: per(after.commits - before.commits),
    inserted: per(after.inserted - before.inserted),
    updated: per(after.updated - before.updated),
    fetched: per(after.fetched - before.fetched),
  };
}
interface Round {
  burst: {
    sent: number;
    failures: number;
    answered: Latency;
    told: Latency;
    missing: number;
    seconds: number;
    /** Where the burst queued: the server's and Postgres' CPU over the burst, the pool and event loop. */
    queueing: BurstQueueing;
  };
  invoice: Latency & { failures: number };
  socle: Throughput;
  baseline: Throughput;
  ratio: number;
  cpuRatio: number;
}

const percentile = (sorted: readonly number[], fraction: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))] ?? Number.NaN;
function latency(values: number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b);
  const round = (value: number) => Math.round(value * 100) / 100;
  return {
    count: sorted.length,
    p50Ms: round(percentile(sorted, 0.5)),
    p99Ms: round(percentile(sorted, 0.99)),
    maxMs: round(sorted.at(-1) ?? Number.NaN),
  };
}
const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};

async function renewals(node: ServerProcess, count: number): Promise<Renewal[]> {
  const all: Renewal[] = [];
  while (all.length < count) {
    const response = await fetch(`${node.url}/bench/payments/renewals`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ count: Math.min(1000, count - all.length) }),
    });
    if (!response.ok) throw new Error(`renewals answered ${response.status}: ${await response.text()}`);
    all.push(...((await response.json()) as { renewals: Renewal[] }).renewals);
  }
  return all;
}

/** POSTs a renewal's event, signed now; resolves with the status (0 on a network error). */
async function deliver(agent: Agent, url: string, renewal: Renewal): Promise<number> {
  try {
    const response = await request(`${url}/payments/webhooks/stripe`, {
      method: 'POST',
      dispatcher: agent,
      headers: { 'content-type': 'application/json', 'stripe-signature': stripeSignature(renewal.body) },
      body: renewal.body,
    });
    await response.body.dump();
    return response.statusCode;
  } catch {
    return 0;
  }
}

/**
 * Buyers' WebSockets (raw Pusher protocol): each subscribes to its private channel, signed with
 * the app's secret, and records when each invoice's `payment.succeeded` arrives.
 */
async function listen(url: string, userIds: readonly string[], told: Map<string, number>) {
  const sockets = await Promise.all(
    userIds.map(
      (userId) =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`${url.replace('http', 'ws')}/app/${PAYMENTS_APP.key}?protocol=7`);
          const channel = `private-user-${userId}`;
          socket.on('message', (raw) => {
            const frame = JSON.parse(raw.toString()) as { event: string; data?: string };
            if (frame.event === 'pusher:connection_established') {
              const { socket_id: socketId } = JSON.parse(frame.data ?? '{}') as { socket_id: string };
              const signature = createHmac('sha256', PAYMENTS_APP.secret)
                .update(`${socketId}:${channel}`)
                .digest('hex');
              socket.send(
                JSON.stringify({
                  event: 'pusher:subscribe',
                  data: { channel, auth: `${PAYMENTS_APP.key}:${signature}` },
                }),
              );
            } else if (frame.event === 'pusher_internal:subscription_succeeded') resolve(socket);
            else if (frame.event === 'payment.succeeded') {
              const data = JSON.parse(frame.data ?? '{}') as { invoiceId?: string };
              if (data.invoiceId !== undefined && !told.has(data.invoiceId))
                told.set(data.invoiceId, performance.now());
            }
          });
          socket.on('error', reject);
        }),
    ),
  );
  return () => {
    for (const socket of sockets) socket.close();
  };
}

/** A gauge's value in a Prometheus text exposition (the first series matching `line`), or NaN. */
function gauge(metrics: string, line: RegExp): number {
  const match = line.exec(metrics);
  return match === null ? Number.NaN : Number(match[1]);
}

/**
 * Reads the server's /metrics every 250 ms while `running()`: the most callers waiting for a
 * pooled session and the largest event-loop delay p99 (a scrape costs the server ~1 ms of CPU).
 */
async function sampleQueues(node: ServerProcess, running: () => boolean) {
  let poolWaitingMax = 0;
  let eventLoopLagP99MaxMs = 0;
  while (running()) {
    try {
      const metrics = await (await fetch(`${node.url}/metrics`)).text();
      const waiting = gauge(metrics, /^socle_db_pool_connections\{state="waiting"\} (\S+)$/m);
      const lag = gauge(metrics, /^nodejs_eventloop_lag_p99_seconds (\S+)$/m) * 1000;
      if (waiting > poolWaitingMax) poolWaitingMax = waiting;
      if (lag > eventLoopLagP99MaxMs) eventLoopLagP99MaxMs = Math.round(lag * 10) / 10;
    } catch {
      // A scrape that fails under load is skipped.
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  return { poolWaitingMax, eventLoopLagP99MaxMs };
}

/** Sends `BURST_RATE` webhooks a second (in steps of 10 ms) until all are sent; times answers and messages. */
async function burst(
  node: ServerProcess,
  agent: Agent,
  list: readonly Renewal[],
  databaseUrl: string | undefined,
): Promise<Round['burst']> {
  const told = new Map<string, number>();
  const stop = await listen(node.url, [...new Set(list.map((renewal) => renewal.userId))], told);
  const postgres = databaseUrl === undefined ? undefined : await openDatabaseCpu(databaseUrl);
  const postgresBefore = (await postgres?.read()) ?? 0;
  const serverBefore = (await processCpuSeconds(node.pid)) ?? 0;
  let bursting = true;
  const sampling = sampleQueues(node, () => bursting);
  const sentAt = new Map<string, number>();
  const answered: number[] = [];
  let failures = 0;
  const started = performance.now();
  const pending: Promise<void>[] = [];
  const perStep = BURST_RATE / 100;
  for (let index = 0; index < list.length; index++) {
    const due = started + (index / perStep) * 10;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((resolve) => setTimeout(resolve, wait));
    const renewal = list[index] as Renewal;
    const at = performance.now();
    sentAt.set(renewal.invoiceId, at);
    pending.push(
      deliver(agent, node.url, renewal).then((status) => {
        if (status === 200) answered.push(performance.now() - at);
        else failures++;
      }),
    );
  }
  await Promise.all(pending);
  const deadline = Date.now() + MESSAGES_TIMEOUT_MS;
  while (told.size < list.length - failures && Date.now() < deadline)
    await new Promise((resolve) => setTimeout(resolve, 50));
  const seconds = (performance.now() - started) / 1000;
  bursting = false;
  const serverSeconds = ((await processCpuSeconds(node.pid)) ?? 0) - serverBefore;
  const postgresSeconds =
    postgres === undefined ? undefined : ((await postgres.read()) - postgresBefore) / 1000;
  await postgres?.close();
  const sampled = await sampling;
  stop();
  const messages = [...told].map(([invoiceId, at]) => at - (sentAt.get(invoiceId) ?? at));
  return {
    sent: list.length,
    failures,
    answered: latency(answered),
    told: latency(messages),
    missing: list.length - failures - told.size,
    seconds,
    queueing: {
      serverCores: Math.round((serverSeconds / seconds) * 100) / 100,
      postgresCores:
        postgresSeconds === undefined ? undefined : Math.round((postgresSeconds / seconds) * 100) / 100,
      ...sampled,
    },
  };
}

/**
 * `CONNECTIONS` loops delivering the list's webhooks one after the other for `seconds`. With
 * `cycle` (the baseline, which only stores events) the list is reused past its end under new event
 * ids; Socle gets each event once (a reused invoice would grant nothing: not the same work).
 */
async function throughput(
  node: ServerProcess,
  agent: Agent,
  list: readonly Renewal[],
  seconds: number,
  databaseUrl: string | undefined,
  cycle = false,
): Promise<Throughput> {
  const at = (index: number): Renewal => {
    const renewal = list[index % list.length] as Renewal;
    return index < list.length
      ? renewal
      : { ...renewal, body: renewal.body.replace(/"id":\s*"evt_[^"]*"/, `"id":"evt_bench_${index}"`) };
  };
  let next = 0;
  let done = 0;
  let failures = 0;
  const postgres = databaseUrl === undefined ? undefined : await openDatabaseCpu(databaseUrl);
  const countersBefore = databaseUrl === undefined ? undefined : await counters(node, databaseUrl);
  const postgresBefore = (await postgres?.read()) ?? 0;
  const cpuBefore = (await processCpuSeconds(node.pid)) ?? 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async () => {
      while (performance.now() < until && (cycle || next < list.length)) {
        const status = await deliver(agent, node.url, at(next++));
        if (status === 200) done++;
        else failures++;
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = ((await processCpuSeconds(node.pid)) ?? 0) - cpuBefore;
  const postgresMs = postgres === undefined ? undefined : (await postgres.read()) - postgresBefore;
  await postgres?.close();
  // Read after the CPU figures, so the two /metrics scrapes and their statements are not in them.
  const perWebhook =
    databaseUrl === undefined || countersBefore === undefined
      ? undefined
      : costOf(countersBefore, await counters(node, databaseUrl), done);
  if (!cycle && next >= list.length) throw new Error('the throughput run ran out of prepared webhooks');
  return {
    perSecond: Math.round(done / elapsed),
    failures,
    cpuMsPerRequest: Math.round(((cpu * 1000) / Math.max(1, done)) * 1000) / 1000,
    postgresCpuMsPerRequest:
      postgresMs === undefined ? undefined : Math.round((postgresMs / Math.max(1, done)) * 1000) / 1000,
    perWebhook,
  };
}

/** `INVOICE_LOOPS` loops opening a Bitcoin invoice (`bench-btc`: no provider latency) and fetching its QR PNG. */
async function invoices(node: ServerProcess, agent: Agent, seconds: number) {
  const times: number[] = [];
  let failures = 0;
  const until = performance.now() + seconds * 1000;
  const call = async (method: 'GET' | 'POST', path: string, body?: unknown) => {
    const response = await request(`${node.url}${path}`, {
      method,
      dispatcher: agent,
      headers: {
        ...node.requestHeaders,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    let text = '';
    if (method === 'POST') text = await response.body.text();
    else await response.body.dump();
    return { status: response.statusCode, text };
  };
  await Promise.all(
    Array.from({ length: INVOICE_LOOPS }, async () => {
      while (performance.now() < until) {
        const start = performance.now();
        const opened = await call('POST', '/payments/invoices', {
          productId: 'coins-500',
          provider: 'bench-btc',
        });
        if (opened.status !== 201) {
          failures++;
          continue;
        }
        const { id } = JSON.parse(opened.text) as { id: string };
        const qr = await call('GET', `/payments/payments/${id}/qr.png`);
        if (qr.status !== 200) failures++;
        else times.push(performance.now() - start);
      }
    }),
  );
  return { ...latency(times), failures };
}

async function oneRound(dialect: BenchDialect, settings: CustomRunSettings, round: number): Promise<Round> {
  const serverSettings = { dialect, databaseUrl: settings.databaseUrl, poolMax: settings.poolMax };
  const agent = new Agent({ connections: CONNECTIONS * 2, pipelining: 1 });
  let throughputList: Renewal[];
  let socleFigures: Omit<Round, 'baseline' | 'ratio' | 'cpuRatio'>;
  const socle = await spawnServer({
    label: `socle-${round + 1}`,
    entry: new URL('./socle-server.js', import.meta.url),
    settings: serverSettings,
    signal: settings.signal,
    startTimeoutSeconds: settings.startTimeoutSeconds,
  });
  try {
    settings.progress(`payments: round ${round + 1}: preparing webhooks`);
    const burstList = await renewals(socle, BURST_RATE * settings.durationSeconds);
    throughputList = await renewals(socle, 800 * settings.durationSeconds);
    settings.progress(`payments: round ${round + 1}: burst of ${burstList.length} at ${BURST_RATE}/s`);
    const burstFigures = await burst(socle, agent, burstList, settings.databaseUrl);
    settings.progress(`payments: round ${round + 1}: throughput, invoices`);
    if (settings.profileDirectory !== undefined) socle.startProfile();
    const socleThroughput = await throughput(
      socle,
      agent,
      throughputList,
      settings.durationSeconds,
      settings.databaseUrl,
    );
    if (settings.profileDirectory !== undefined) {
      // Where Socle's CPU per webhook goes (`--profile`): the throughput run only.
      const path = `${settings.profileDirectory}/payments-socle-${Date.now()}.cpuprofile`;
      await socle.stopProfile(path);
      const summary = await summarizeProfile(path, 20);
      const requests = Math.max(1, socleThroughput.perSecond * settings.durationSeconds);
      settings.progress(
        `  socle CPU by package (${path}):\n${formatProfileEntries(summary.byPackage, requests)}\n` +
          `  socle heaviest functions:\n${formatProfileEntries(summary.byFunction, requests)}`,
      );
    }
    const invoice = await invoices(socle, agent, settings.durationSeconds);
    socleFigures = { burst: burstFigures, invoice, socle: socleThroughput };
  } finally {
    await socle.stop();
  }
  const baseline = await spawnServer({
    label: `baseline-${round + 1}`,
    entry: new URL('./baseline-server.js', import.meta.url),
    settings: serverSettings,
    signal: settings.signal,
    startTimeoutSeconds: settings.startTimeoutSeconds,
  });
  try {
    const baselineThroughput = await throughput(
      baseline,
      agent,
      throughputList,
      settings.durationSeconds,
      settings.databaseUrl,
      true,
    );
    return {
      ...socleFigures,
      baseline: baselineThroughput,
      ratio: Math.round((socleFigures.socle.perSecond / baselineThroughput.perSecond) * 100) / 100,
      cpuRatio:
        Math.round((baselineThroughput.cpuMsPerRequest / socleFigures.socle.cpuMsPerRequest) * 100) / 100,
    };
  } finally {
    await baseline.stop();
    await agent.close();
  }
}

/**
 * A provider's webhook turned into a ledger posting and a message to the buyer: Stripe
 * `invoice.paid` events of 20 subscriptions (20 organizations), each granting credits once and
 * telling the buyer's private channel. Measured: a burst at 500 webhooks/s (time to the answer
 * and to the buyer's WebSocket message), throughput from 50 connections vs a bare Fastify route
 * that checks the signature and inserts the event row, and invoice + QR time with a provider that
 * answers at once.
 */
export const payments: CustomScenario = {
  kind: 'custom',
  name: 'payments',
  description:
    'Stripe webhook → ledger posting → buyer WebSocket message under a 500/s burst; webhook throughput vs bare Fastify + insert; invoice + QR time',
  dialects: ['postgres'],
  async run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult> {
    const rounds: Round[] = [];
    for (let round = 0; round < settings.rounds; round++)
      rounds.push(await oneRound(dialect, settings, round));
    const pick = (value: (round: Round) => number) => median(rounds.map(value));
    const summary = {
      burstToldP50Ms: pick((round) => round.burst.told.p50Ms),
      burstToldP99Ms: pick((round) => round.burst.told.p99Ms),
      burstAnsweredP99Ms: pick((round) => round.burst.answered.p99Ms),
      invoiceP50Ms: pick((round) => round.invoice.p50Ms),
      invoiceP99Ms: pick((round) => round.invoice.p99Ms),
      soclePerSecond: pick((round) => round.socle.perSecond),
      baselinePerSecond: pick((round) => round.baseline.perSecond),
      ratio: pick((round) => round.ratio),
      cpuRatio: pick((round) => round.cpuRatio),
      socleCpuMs: pick((round) => round.socle.cpuMsPerRequest),
      soclePostgresCpuMs: pick((round) => round.socle.postgresCpuMsPerRequest ?? Number.NaN),
      baselineCpuMs: pick((round) => round.baseline.cpuMsPerRequest),
      baselinePostgresCpuMs: pick((round) => round.baseline.postgresCpuMsPerRequest ?? Number.NaN),
    };
    const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
    const cost = (per: PerWebhook | undefined) =>
      per === undefined
        ? '?'
        : `${per.statements ?? '?'} statements, ${per.commits} commits, ${per.inserted} rows inserted, ${per.updated} updated, ${per.fetched} fetched`;
    const lines = [
      `payments (${dialect}, ${settings.durationSeconds} s phases, ${rounds.length} round(s); medians)`,
      ...rounds.map(
        (round, index) =>
          `  round ${index + 1}: burst ${round.burst.sent} in ${round.burst.seconds.toFixed(1)} s (${round.burst.failures} failed, ${round.burst.missing} messages missing): answer p50 ${round.burst.answered.p50Ms} p99 ${round.burst.answered.p99Ms} ms, message p50 ${round.burst.told.p50Ms} p99 ${round.burst.told.p99Ms} max ${round.burst.told.maxMs} ms (server ${round.burst.queueing.serverCores} cores, postgres ${round.burst.queueing.postgresCores ?? '?'} cores, pool waiting max ${round.burst.queueing.poolWaitingMax}, event-loop lag p99 max ${round.burst.queueing.eventLoopLagP99MaxMs} ms); throughput socle ${round.socle.perSecond}/s (cpu ${round.socle.cpuMsPerRequest} ms/req + postgres ${round.socle.postgresCpuMsPerRequest ?? '?'}) baseline ${round.baseline.perSecond}/s (cpu ${round.baseline.cpuMsPerRequest} ms/req + postgres ${round.baseline.postgresCpuMsPerRequest ?? '?'}) ratio ${round.ratio} cpu ratio ${round.cpuRatio}; invoice+QR p50 ${round.invoice.p50Ms} p99 ${round.invoice.p99Ms} ms (${round.invoice.count}, ${round.invoice.failures} failed)`,
      ),
      ...rounds.map(
        (round, index) =>
          `  round ${index + 1} per webhook: socle ${cost(round.socle.perWebhook)}; baseline ${cost(round.baseline.perWebhook)}`,
      ),
      `  webhook → ledger → WebSocket at ${BURST_RATE}/s: p50 ${summary.burstToldP50Ms} ms  p99 ${summary.burstToldP99Ms} ms (goal < ${GOALS.burstP99Ms} ms: ${met(summary.burstToldP99Ms < GOALS.burstP99Ms)})`,
      `  invoice + QR (no provider latency): p50 ${summary.invoiceP50Ms} ms  p99 ${summary.invoiceP99Ms} ms (goal < ${GOALS.invoiceP99Ms} ms: ${met(summary.invoiceP99Ms < GOALS.invoiceP99Ms)})`,
      `  throughput socle ${summary.soclePerSecond}/s vs baseline ${summary.baselinePerSecond}/s: ratio ${summary.ratio} (goal ≥ ${GOALS.ratio}: ${met(summary.ratio >= GOALS.ratio)}), cpu ratio ${summary.cpuRatio}`,
      `  CPU per webhook: socle ${summary.socleCpuMs} ms + postgres ${summary.soclePostgresCpuMs} ms; baseline ${summary.baselineCpuMs} ms + postgres ${summary.baselinePostgresCpuMs} ms`,
    ];
    return { scenario: 'payments', dialect, text: lines.join('\n'), figures: { rounds, summary } };
  },
};
