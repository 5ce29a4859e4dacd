import { createHmac } from 'node:crypto';
import { loadavg } from 'node:os';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Agent, request } from 'undici';
import WebSocket from 'ws';
import { openDatabaseCpu } from '../../database-cpu.js';
import { type LoadMeasurement, measureLoad } from '../../load.js';
import { processCpuSeconds } from '../../process-cpu.js';
import { formatProfileEntries, summarizeProfile } from '../../profile-summary.js';
import type { CustomResult, CustomRunSettings, CustomScenario } from '../../scenario.js';
import {
  histogramDelta,
  histogramQuantile,
  machineCpuTicks,
  type ServerWatch,
  scrapeMetrics,
  watchServer,
} from '../../server-metrics.js';
import { type ServerProcess, spawnServer } from '../../server-process.js';
import type { BenchDialect } from '../../server-protocol.js';
import { CRYPTOCARE_APP, type Seed, type SignedWebhook, searchQuery } from './shared.js';

/** Virtual users when `--connections` is not given (the seed's 1,000 concurrent users). */
const DEFAULT_USERS = 1_000;
/**
 * Mean pause between two actions of one user (uniform between half and 1.5 times it), as a load
 * test's `sleep(1)` does: 1,000 users then offer about 1,000 actions a second.
 */
const THINK_MS = Number(process.env.BENCH_CRYPTOCARE_THINK_MS ?? 1_000);
/** Connections of the search-only run that compares Socle with the baseline. */
const SEARCH_CONNECTIONS = 50;
/** Longest wait, after the load, for payment flows still running and their messages. */
const TAIL_TIMEOUT_MS = 30_000;
/** The issue's goals (ten times the seed's). */
const GOALS = {
  p95Ms: 50,
  qrP99Ms: 50,
  pageP99Ms: 500,
  zoomP99Ms: 2_000,
  ratio: 0.7,
  /** The seed's own "payment confirmation < 5 s", which the issue measures on Lightning. */
  lightningConfirmationMs: 5_000,
};

const ENDPOINTS = ['search', 'professional', 'slots', 'hold', 'webhook', 'agenda'] as const;
type Endpoint = (typeof ENDPOINTS)[number];
/** Each endpoint's route as Socle's HTTP metrics name it. */
const ROUTES: Record<Endpoint, { method: string; route: string }> = {
  search: { method: 'GET', route: '/cryptocare/search' },
  professional: { method: 'GET', route: '/cryptocare/professionals/:id' },
  slots: { method: 'GET', route: '/cryptocare/professionals/:id/slots' },
  hold: { method: 'POST', route: '/cryptocare/appointments' },
  webhook: { method: 'POST', route: '/payments/webhooks/:provider' },
  agenda: { method: 'GET', route: '/cryptocare/agenda' },
};
/** How often the server's /metrics are sampled during the mixed load. */
const WATCH_INTERVAL_MS = 250;
const LABELS: Record<Endpoint, string> = {
  search: 'GET  search',
  professional: 'GET  professional',
  slots: 'GET  slots',
  hold: 'POST hold (invoice + QR)',
  webhook: 'POST BTCPay webhook',
  agenda: 'GET  agenda',
};

interface Latency {
  count: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}
interface EndpointFigures extends Latency {
  errors: number;
  /** Mean time inside the server (Socle's own histogram), to tell from the time the request waited before. */
  serverMeanMs: number;
}
/** Where the mixed load's requests spent their time, besides the server's own CPU. */
interface Queues {
  /** CPU of the database's backends per request, and the cores they used. */
  postgresCores: number;
  postgresCpuMsPerRequest: number;
  /** CPU of this process (the virtual users, the load generator) and the lag of its event loop. */
  loadGeneratorCores: number;
  loadGeneratorLagP99Ms: number;
  /** The whole machine's busy share of its cores (every engineer's work included). */
  machineBusy: number;
  /** Waits for a session of the request pool (mean, p95 bucket bound) and of the background pool (jobs). */
  poolWaitMeanMs: number;
  poolWaitP95Ms: number;
  poolWaits: number;
  backgroundPoolWaitMeanMs: number;
  backgroundPoolWaitP95Ms: number;
  /** The server's event loop and request pool, sampled every WATCH_INTERVAL_MS. */
  watch: ServerWatch;
}
interface Round {
  users: number;
  seconds: number;
  requests: number;
  errors: number;
  /**
   * Errors by status and problem code (`503 db.overloaded`: refused at once by load shedding;
   * `503 db.unavailable`: waited past DATABASE_CONNECT_TIMEOUT_MS for a session; `0`: no answer).
   */
  errorKinds: Record<string, number>;
  errorSamples: string[];
  holds: number;
  slotTaken: number;
  serverCores: number;
  serverCpuMsPerRequest: number;
  /** Every answered request of the mix, whatever its endpoint (the calibration's p99). */
  mix: Latency;
  /** Share of the answered requests that write (holds, 409 slot_taken included, and webhooks). */
  writeShare: number;
  queues: Queues;
  endpoints: Record<Endpoint, EndpointFigures>;
  webhookToPage: Latency & { missing: number };
  zoomLink: Latency & { missing: number };
  search: { socle: SearchRun; baseline: SearchRun; ratio: number; cpuRatio: number; sameBody: boolean };
  loadAverage: { before: number[]; after: number[] };
}
interface SearchRun {
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  cpuMsPerRequest: number;
  /** CPU of the database's backends per search. */
  postgresCpuMsPerRequest: number;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const round2 = (value: number) => Math.round(value * 100) / 100;
const pick = <T>(items: readonly T[]) => items[Math.floor(Math.random() * items.length)] as T;
const median = (values: readonly number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? Number.NaN;
};
function latency(values: readonly number[]): Latency {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (fraction: number) =>
    round2(sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(sorted.length * fraction) - 1))] ?? NaN);
  return {
    count: sorted.length,
    p50Ms: at(0.5),
    p95Ms: at(0.95),
    p99Ms: at(0.99),
    maxMs: round2(sorted.at(-1) ?? NaN),
  };
}

/** Each patient's WebSocket on `private-user-{id}` (raw Pusher protocol): when each appointment's events arrive. */
async function listen(url: string, userIds: readonly string[]) {
  const confirmed = new Map<string, number>();
  const zoomReady = new Map<string, number>();
  const sockets = await Promise.all(
    userIds.map(
      (userId) =>
        new Promise<WebSocket>((resolve, reject) => {
          const socket = new WebSocket(`${url.replace('http', 'ws')}/app/${CRYPTOCARE_APP.key}?protocol=7`);
          const channel = `private-user-${userId}`;
          socket.on('message', (raw) => {
            const frame = JSON.parse(raw.toString()) as { event: string; data?: string };
            if (frame.event === 'pusher:connection_established') {
              const { socket_id: socketId } = JSON.parse(frame.data ?? '{}') as { socket_id: string };
              const signature = createHmac('sha256', CRYPTOCARE_APP.secret)
                .update(`${socketId}:${channel}`)
                .digest('hex');
              socket.send(
                JSON.stringify({
                  event: 'pusher:subscribe',
                  data: { channel, auth: `${CRYPTOCARE_APP.key}:${signature}` },
                }),
              );
            } else if (frame.event === 'pusher_internal:subscription_succeeded') resolve(socket);
            else if (frame.event === 'appointment.confirmed' || frame.event === 'appointment.zoom_ready') {
              const { id } = JSON.parse(frame.data ?? '{}') as { id?: string };
              const seen = frame.event === 'appointment.confirmed' ? confirmed : zoomReady;
              if (id !== undefined && !seen.has(id)) seen.set(id, performance.now());
            }
          });
          socket.on('error', reject);
        }),
    ),
  );
  return {
    confirmed,
    zoomReady,
    close: () => {
      for (const socket of sockets) socket.close();
    },
  };
}

/** The mixed load: `users` virtual users, each acting then pausing, until `until`. */
async function mixedLoad(
  node: ServerProcess,
  seed: Seed,
  users: number,
  seconds: number,
  databaseUrl: string | undefined,
) {
  const agent = new Agent({ pipelining: 1, headersTimeout: 30_000, bodyTimeout: 30_000 });
  const times = Object.fromEntries(ENDPOINTS.map((endpoint) => [endpoint, [] as number[]])) as Record<
    Endpoint,
    number[]
  >;
  const errors = Object.fromEntries(ENDPOINTS.map((endpoint) => [endpoint, 0])) as Record<Endpoint, number>;
  const errorSamples: string[] = [];
  const errorKinds: Record<string, number> = {};
  let holds = 0;
  let slotTaken = 0;
  const paidAt = new Map<string, number>();
  const events = await listen(node.url, [...new Set(seed.patients.map((patient) => patient.userId))]);

  const call = async (
    endpoint: Endpoint | undefined,
    method: 'GET' | 'POST',
    path: string,
    headers: Record<string, string>,
    body?: string,
  ): Promise<{ status: number; text: string }> => {
    const started = performance.now();
    let status = 0;
    let text = '';
    try {
      const response = await request(`${node.url}${path}`, {
        method,
        dispatcher: agent,
        headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
        ...(body === undefined ? {} : { body }),
      });
      status = response.statusCode;
      text = await response.body.text();
    } catch (error) {
      text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
    }
    if (endpoint === undefined) return { status, text };
    const slotIsTaken = endpoint === 'hold' && status === 409 && text.includes('cryptocare.slot_taken');
    if (status >= 200 && status < 300) times[endpoint].push(performance.now() - started);
    else if (!slotIsTaken) {
      errors[endpoint]++;
      const kind = `${status} ${/"code":"([^"]+)"/.exec(text)?.[1] ?? ''}`.trim();
      errorKinds[kind] = (errorKinds[kind] ?? 0) + 1;
      if (errorSamples.length < 5) errorSamples.push(`${endpoint} ${status}: ${text.slice(0, 200)}`);
    }
    return { status, text };
  };

  const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
  const freeSlots = async (token: string, professionalId: string) => {
    const from = new Date().toISOString();
    const to = new Date(Date.now() + 3 * 24 * 3600_000).toISOString();
    const answer = await call(
      'slots',
      'GET',
      `/cryptocare/professionals/${professionalId}/slots?from=${from}&to=${to}`,
      bearer(token),
    );
    return answer.status === 200 ? (JSON.parse(answer.text) as { slots: { startsAt: string }[] }).slots : [];
  };

  const actions = {
    search: async () => {
      await call('search', 'GET', searchQuery(Math.random), bearer(pick(seed.patients).token));
    },
    professionalPage: async () => {
      const { token } = pick(seed.patients);
      const { id } = pick(seed.professionals);
      await call('professional', 'GET', `/cryptocare/professionals/${id}`, bearer(token));
      await freeSlots(token, id);
    },
    bookAndPay: async () => {
      const patient = pick(seed.patients);
      const { id } = pick(seed.professionals);
      const slots = await freeSlots(patient.token, id);
      if (slots.length === 0) return;
      const { startsAt } = pick(slots.slice(0, 20));
      const held = await call(
        'hold',
        'POST',
        '/cryptocare/appointments',
        bearer(patient.token),
        JSON.stringify({ professionalId: id, startsAt }),
      );
      if (held.status === 409) slotTaken++;
      if (held.status !== 201) return;
      holds++;
      const { appointment } = JSON.parse(held.text) as { appointment: { id: string } };
      // The processor settles the invoice (not timed), then its webhook is delivered and timed.
      const signed = await call(
        undefined,
        'POST',
        '/bench/cryptocare/settlement',
        {},
        JSON.stringify({ appointmentId: appointment.id }),
      );
      if (signed.status !== 200) {
        errorSamples.push(`settlement ${signed.status}: ${signed.text.slice(0, 200)}`);
        return;
      }
      const webhook = JSON.parse(signed.text) as SignedWebhook;
      paidAt.set(appointment.id, performance.now());
      await call('webhook', 'POST', '/payments/webhooks/btcpay', webhook.headers, webhook.body);
    },
    agenda: async () => {
      const professional = pick(seed.professionals);
      const from = new Date(Date.now() - 24 * 3600_000).toISOString();
      const to = new Date(Date.now() + 14 * 24 * 3600_000).toISOString();
      await call('agenda', 'GET', `/cryptocare/agenda?from=${from}&to=${to}`, {
        ...bearer(professional.token),
        'x-org-id': professional.orgId,
      });
    },
  };

  const databaseCpu = databaseUrl === undefined ? undefined : await openDatabaseCpu(databaseUrl);
  const metricsBefore = await scrapeMetrics(node.url);
  const databaseCpuBefore = (await databaseCpu?.read()) ?? 0;
  const machineBefore = await machineCpuTicks();
  const harnessCpuBefore = process.cpuUsage();
  const harnessLag = monitorEventLoopDelay({ resolution: 10 });
  harnessLag.enable();
  const watch = watchServer(node.url, WATCH_INTERVAL_MS);
  const cpuBefore = (await processCpuSeconds(node.pid)) ?? 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(
    Array.from({ length: users }, async () => {
      // Users arrive spread over one pause, not all in the same millisecond.
      await sleep(Math.random() * THINK_MS);
      while (performance.now() < until) {
        const draw = Math.random();
        if (draw < 0.6) await actions.search();
        else if (draw < 0.8) await actions.professionalPage();
        else if (draw < 0.9) await actions.bookAndPay();
        else await actions.agenda();
        await sleep(THINK_MS * (0.5 + Math.random()));
      }
    }),
  );
  const elapsed = (performance.now() - started) / 1000;
  const cpu = ((await processCpuSeconds(node.pid)) ?? 0) - cpuBefore;
  const harnessCpu = process.cpuUsage(harnessCpuBefore);
  harnessLag.disable();
  const machineAfter = await machineCpuTicks();
  const databaseCpuMs = ((await databaseCpu?.read()) ?? 0) - databaseCpuBefore;
  await databaseCpu?.close();
  const watched = await watch.stop();
  const metricsAfter = await scrapeMetrics(node.url);
  // Messages still on their way (Zoom links take a job and 300 ms of Zoom).
  const tailUntil = Date.now() + TAIL_TIMEOUT_MS;
  while (
    (events.confirmed.size < paidAt.size || events.zoomReady.size < paidAt.size) &&
    Date.now() < tailUntil
  )
    await sleep(100);
  events.close();
  await agent.close();

  const requests = ENDPOINTS.reduce((sum, endpoint) => sum + times[endpoint].length + errors[endpoint], 0);
  const sinceWebhook = (arrivals: Map<string, number>) => {
    const values = [...paidAt]
      .filter(([id]) => arrivals.has(id))
      .map(([id, at]) => (arrivals.get(id) as number) - at);
    return { ...latency(values), missing: paidAt.size - values.length };
  };
  const answered = requests + slotTaken;
  const poolWait = (pool: string) =>
    histogramDelta(metricsBefore, metricsAfter, 'socle_db_pool_wait_seconds', { pool });
  const requestPool = poolWait('request');
  const backgroundPool = poolWait('background');
  const meanMs = (delta: { sum: number; count: number }) =>
    round2(delta.count > 0 ? (delta.sum * 1000) / delta.count : Number.NaN);
  const serverMeanMs = (endpoint: Endpoint) =>
    meanMs(
      histogramDelta(metricsBefore, metricsAfter, 'socle_http_request_duration_seconds', ROUTES[endpoint]),
    );
  const queues: Queues = {
    postgresCores: round2(databaseCpuMs / 1000 / elapsed),
    postgresCpuMsPerRequest: round2(databaseCpuMs / Math.max(1, answered)),
    loadGeneratorCores: round2((harnessCpu.user + harnessCpu.system) / 1e6 / elapsed),
    loadGeneratorLagP99Ms: round2(harnessLag.percentile(99) / 1e6),
    machineBusy:
      machineBefore === undefined || machineAfter === undefined
        ? Number.NaN
        : round2(
            (machineAfter.busy - machineBefore.busy) / Math.max(1, machineAfter.total - machineBefore.total),
          ),
    poolWaitMeanMs: meanMs(requestPool),
    poolWaitP95Ms: round2(histogramQuantile(requestPool, 0.95) * 1000),
    poolWaits: requestPool.count,
    backgroundPoolWaitMeanMs: meanMs(backgroundPool),
    backgroundPoolWaitP95Ms: round2(histogramQuantile(backgroundPool, 0.95) * 1000),
    watch: {
      ...watched,
      poolWaitingMean: round2(watched.poolWaitingMean),
      eventLoopP99Ms: round2(watched.eventLoopP99Ms),
      eventLoopMaxMs: round2(watched.eventLoopMaxMs),
      scrapeP50Ms: round2(watched.scrapeP50Ms),
    },
  };
  const writes = times.hold.length + errors.hold + slotTaken + times.webhook.length + errors.webhook;
  return {
    seconds: round2(elapsed),
    requests: answered,
    mix: latency(ENDPOINTS.flatMap((endpoint) => times[endpoint])),
    writeShare: Math.round((writes / Math.max(1, answered)) * 1000) / 1000,
    errors: ENDPOINTS.reduce((sum, endpoint) => sum + errors[endpoint], 0),
    errorKinds,
    errorSamples,
    holds,
    slotTaken,
    serverCores: round2(cpu / elapsed),
    serverCpuMsPerRequest: Math.round(((cpu * 1000) / Math.max(1, answered)) * 1000) / 1000,
    queues,
    endpoints: Object.fromEntries(
      ENDPOINTS.map((endpoint) => [
        endpoint,
        { ...latency(times[endpoint]), errors: errors[endpoint], serverMeanMs: serverMeanMs(endpoint) },
      ]),
    ) as Record<Endpoint, EndpointFigures>,
    webhookToPage: sinceWebhook(events.confirmed),
    zoomLink: sinceWebhook(events.zoomReady),
  };
}

/** Search only, `SEARCH_CONNECTIONS` keep-alive connections back to back (autocannon), with the server's CPU. */
async function searchOnly(node: ServerProcess, token: string, settings: CustomRunSettings, label: string) {
  const nextRequest = () => ({
    method: 'GET' as const,
    path: searchQuery(Math.random),
    headers: { authorization: `Bearer ${token}` },
  });
  const load = (durationSeconds: number) =>
    measureLoad({
      url: node.url,
      connections: SEARCH_CONNECTIONS,
      durationSeconds,
      nextRequest,
      signal: settings.signal,
    });
  await load(2);
  const databaseCpu =
    settings.databaseUrl === undefined ? undefined : await openDatabaseCpu(settings.databaseUrl);
  const databaseCpuBefore = (await databaseCpu?.read()) ?? 0;
  const profilePath =
    settings.profileDirectory === undefined
      ? undefined
      : `${settings.profileDirectory}/cryptocare-search-${label}-${Date.now()}.cpuprofile`;
  if (profilePath !== undefined) node.startProfile();
  const cpuBefore = (await processCpuSeconds(node.pid)) ?? 0;
  const measured: LoadMeasurement = await load(settings.durationSeconds);
  const cpu = ((await processCpuSeconds(node.pid)) ?? 0) - cpuBefore;
  if (profilePath !== undefined) {
    // --profile: where the server's CPU went during the search-only run.
    await node.stopProfile(profilePath);
    const summary = await summarizeProfile(profilePath, 25);
    settings.progress(
      `  ${label} search CPU by package (${profilePath}):\n${formatProfileEntries(summary.byPackage, measured.totalRequests)}\n` +
        `  ${label} heaviest functions:\n${formatProfileEntries(summary.byFunction, measured.totalRequests)}`,
    );
  }
  const databaseCpuMs = ((await databaseCpu?.read()) ?? 0) - databaseCpuBefore;
  await databaseCpu?.close();
  return {
    perSecond: Math.round(measured.requestsPerSecond),
    p50Ms: round2(measured.latencyMs.p50),
    p99Ms: round2(measured.latencyMs.p99),
    non2xx: measured.non2xx + measured.errors + measured.timeouts,
    cpuMsPerRequest: Math.round(((cpu * 1000) / Math.max(1, measured.totalRequests)) * 1000) / 1000,
    postgresCpuMsPerRequest: round2(databaseCpuMs / Math.max(1, measured.totalRequests)),
  } satisfies SearchRun;
}

/** One fixed search's body, to check both servers answer the same. */
async function probe(node: ServerProcess, token: string) {
  const response = await fetch(
    `${node.url}/cryptocare/search?latitude=47.3769&longitude=8.5417&radiusKm=25&limit=10`,
    { headers: { authorization: `Bearer ${token}` } },
  );
  return `${response.status} ${await response.text()}`;
}

/**
 * One round on a new Socle server. The first round seeds the directory through it; later rounds
 * reuse that seed (same database, same secret key: the tokens stay valid), so every round loads
 * the same directory instead of one that grows by a seed per round.
 */
async function oneRound(
  dialect: BenchDialect,
  settings: CustomRunSettings,
  index: number,
  seeds: Seed[],
): Promise<Round> {
  const serverSettings = { dialect, databaseUrl: settings.databaseUrl, poolMax: settings.poolMax };
  const users = settings.connections ?? DEFAULT_USERS;
  const before = loadavg().map(round2);
  settings.progress(
    `cryptocare: round ${index + 1}: starting Socle${index === 0 ? ' and seeding the directory' : ''}`,
  );
  const socle = await spawnServer({
    label: `socle-${index + 1}`,
    entry: new URL('./socle-server.js', import.meta.url),
    settings: serverSettings,
    signal: settings.signal,
    startTimeoutSeconds: settings.startTimeoutSeconds,
  });
  let mixed: Awaited<ReturnType<typeof mixedLoad>>;
  let socleSearch: SearchRun;
  let socleProbe: string;
  let token: string;
  try {
    if (seeds.length === 0) {
      const seeded = await request(`${socle.url}/bench/cryptocare/seed`, {
        method: 'POST',
        headersTimeout: 600_000,
        bodyTimeout: 600_000,
      });
      if (seeded.statusCode !== 200)
        throw new Error(`seeding answered ${seeded.statusCode}: ${await seeded.body.text()}`);
      seeds.push((await seeded.body.json()) as Seed);
    }
    const seed = seeds[0] as Seed;
    token = (seed.patients[0] as { token: string }).token;
    settings.progress(`cryptocare: round ${index + 1}: ${users} users for ${settings.durationSeconds} s`);
    mixed = await mixedLoad(socle, seed, users, settings.durationSeconds, settings.databaseUrl);
    settings.progress(`cryptocare: round ${index + 1}: search only, Socle`);
    socleSearch = await searchOnly(socle, token, settings, 'socle');
    socleProbe = await probe(socle, token);
  } finally {
    await socle.stop();
  }
  const baseline = await spawnServer({
    label: `baseline-${index + 1}`,
    entry: new URL('./baseline-server.js', import.meta.url),
    settings: serverSettings,
    signal: settings.signal,
    startTimeoutSeconds: settings.startTimeoutSeconds,
  });
  try {
    settings.progress(`cryptocare: round ${index + 1}: search only, baseline`);
    const baselineProbe = await probe(baseline, token);
    const baselineSearch = await searchOnly(baseline, token, settings, 'baseline');
    return {
      users,
      ...mixed,
      search: {
        socle: socleSearch,
        baseline: baselineSearch,
        ratio: round2(socleSearch.perSecond / baselineSearch.perSecond),
        cpuRatio: round2(baselineSearch.cpuMsPerRequest / socleSearch.cpuMsPerRequest),
        sameBody: baselineProbe === socleProbe,
      },
      loadAverage: { before, after: loadavg().map(round2) },
    };
  } finally {
    await baseline.stop();
  }
}

const met = (ok: boolean) => (ok ? 'met' : 'NOT met');
const figures = (value: Latency) =>
  `p50 ${value.p50Ms.toFixed(1)}  p95 ${value.p95Ms.toFixed(1)}  p99 ${value.p99Ms.toFixed(1)}  max ${value.maxMs.toFixed(1)} ms (${value.count})`;

function describeRound(round: Round, index: number): string[] {
  const worst = ENDPOINTS.filter((endpoint) => endpoint !== 'webhook').reduce((a, b) =>
    round.endpoints[a].p95Ms >= round.endpoints[b].p95Ms ? a : b,
  );
  const errorRate = round.errors / Math.max(1, round.requests);
  const { search, queues } = round;
  return [
    `  round ${index + 1}: ${round.users} users, ${round.requests} requests in ${round.seconds} s (${Math.round(round.requests / round.seconds)} req/s), ${round.errors} errors (${(errorRate * 100).toFixed(2)} %), holds ${round.holds} + ${round.slotTaken} × 409 slot_taken; server ${round.serverCores} cores, ${round.serverCpuMsPerRequest} ms cpu/req; load average ${round.loadAverage.before.join(' ')} → ${round.loadAverage.after.join(' ')}`,
    `    queues: postgres ${queues.postgresCores} cores, ${queues.postgresCpuMsPerRequest} ms cpu/req; load generator ${queues.loadGeneratorCores} cores, event loop p99 ${queues.loadGeneratorLagP99Ms} ms; machine ${Math.round(queues.machineBusy * 100)} % busy`,
    `    server: pool wait mean ${queues.poolWaitMeanMs} ms, p95 ≤ ${queues.poolWaitP95Ms} ms (${queues.poolWaits} leases), callers queued mean ${queues.watch.poolWaitingMean} max ${queues.watch.poolWaitingMax}; background pool wait mean ${queues.backgroundPoolWaitMeanMs} ms, p95 ≤ ${queues.backgroundPoolWaitP95Ms} ms; event loop lag p99 ${queues.watch.eventLoopP99Ms} ms, max ${queues.watch.eventLoopMaxMs} ms; /metrics answered in ${queues.watch.scrapeP50Ms} ms (p50 of ${queues.watch.samples})`,
    ...ENDPOINTS.map(
      (endpoint) =>
        `    ${LABELS[endpoint].padEnd(26)} ${figures(round.endpoints[endpoint])}; in server ${round.endpoints[endpoint].serverMeanMs} ms mean${round.endpoints[endpoint].errors > 0 ? `  ${round.endpoints[endpoint].errors} errors` : ''}`,
    ),
    `    webhook → patient's page   ${figures(round.webhookToPage)}, ${round.webhookToPage.missing} missing`,
    `    webhook → Zoom link        ${figures(round.zoomLink)}, ${round.zoomLink.missing} missing (fake Zoom answers in 300 ms)`,
    `    search only (${SEARCH_CONNECTIONS} conns): socle ${search.socle.perSecond} req/s p50 ${search.socle.p50Ms} p99 ${search.socle.p99Ms} ms cpu ${search.socle.cpuMsPerRequest} ms/req + postgres ${search.socle.postgresCpuMsPerRequest} ms; baseline ${search.baseline.perSecond} req/s p50 ${search.baseline.p50Ms} p99 ${search.baseline.p99Ms} ms cpu ${search.baseline.cpuMsPerRequest} ms/req + postgres ${search.baseline.postgresCpuMsPerRequest} ms; ratio ${search.ratio} cpu ratio ${search.cpuRatio}`,
    ...(search.sameBody
      ? []
      : ['    warning: Socle and the baseline answered the probe search with different bodies']),
    ...(search.socle.non2xx + search.baseline.non2xx > 0
      ? [
          `    warning: search-only non-2xx/errors: socle ${search.socle.non2xx}, baseline ${search.baseline.non2xx}`,
        ]
      : []),
    ...(round.errors > 0
      ? [
          `    errors by kind: ${Object.entries(round.errorKinds)
            .sort(([, a], [, b]) => b - a)
            .map(([kind, count]) => `${kind} × ${count}`)
            .join(', ')}`,
        ]
      : []),
    ...round.errorSamples.map((sample) => `    error: ${sample}`),
    `    worst API p95: ${LABELS[worst].trim()} ${round.endpoints[worst].p95Ms} ms`,
  ];
}

/**
 * The seed's load test on loopback: virtual users (1,000 by default, `--connections` to lower)
 * searching (60 %), opening a professional's page (20 %), booking and paying (10 %: slots, a hold
 * that opens the Bitcoin invoice and its QR, the processor's webhook) and reading a practice's
 * agenda (10 %), each pausing about a second between actions, for `--duration` seconds; then
 * search alone against a bare Fastify + pg route running the same SQL.
 */
export const cryptocare: CustomScenario = {
  kind: 'custom',
  name: 'cryptocare',
  description:
    'CryptoCare mixed load (search, professional page, book + pay, agenda) by virtual users; webhook → page and Zoom link times; search vs bare Fastify + pg',
  dialects: ['postgres'],
  async run(dialect: BenchDialect, settings: CustomRunSettings): Promise<CustomResult> {
    const rounds: Round[] = [];
    const seeds: Seed[] = [];
    for (let index = 0; index < settings.rounds; index++)
      rounds.push(await oneRound(dialect, settings, index, seeds));
    const of = (value: (round: Round) => number) => median(rounds.map(value));
    const summary = {
      worstP95Ms: of((round) =>
        Math.max(
          ...ENDPOINTS.filter((endpoint) => endpoint !== 'webhook').map(
            (endpoint) => round.endpoints[endpoint].p95Ms,
          ),
        ),
      ),
      errors: of((round) => round.errors),
      qrP99Ms: of((round) => round.endpoints.hold.p99Ms),
      pageP99Ms: of((round) => round.webhookToPage.p99Ms),
      zoomP99Ms: of((round) => round.zoomLink.p99Ms),
      ratio: of((round) => round.search.ratio),
      cpuRatio: of((round) => round.search.cpuRatio),
      requestsPerSecond: of((round) => round.requests / round.seconds),
      serverCores: of((round) => round.serverCores),
      serverCpuMsPerRequest: of((round) => round.serverCpuMsPerRequest),
      postgresCpuMsPerRequest: of((round) => round.queues.postgresCpuMsPerRequest),
      mixP99Ms: of((round) => round.mix.p99Ms),
      writeShare: of((round) => round.writeShare),
      users: rounds[0]?.users ?? 0,
      thinkMs: THINK_MS,
      poolWaitMeanMs: of((round) => round.queues.poolWaitMeanMs),
      eventLoopP99Ms: of((round) => round.queues.watch.eventLoopP99Ms),
      loadGeneratorCores: of((round) => round.queues.loadGeneratorCores),
    };
    const lines = [
      `cryptocare (${dialect}, ${rounds[0]?.users} users pausing ~${THINK_MS} ms, ${settings.durationSeconds} s, ${rounds.length} round(s); medians)`,
      ...rounds.flatMap(describeRound),
      `  API p95 (worst endpoint) ${summary.worstP95Ms} ms (goal < ${GOALS.p95Ms} ms: ${met(summary.worstP95Ms < GOALS.p95Ms)}); errors ${summary.errors} (goal 0: ${met(summary.errors === 0)})`,
      `  hold with invoice + QR p99 ${summary.qrP99Ms} ms (goal < ${GOALS.qrP99Ms} ms: ${met(summary.qrP99Ms < GOALS.qrP99Ms)}; the fake processor answers on loopback)`,
      `  webhook → patient's page p99 ${summary.pageP99Ms} ms (goal < ${GOALS.pageP99Ms} ms: ${met(summary.pageP99Ms < GOALS.pageP99Ms)}); Zoom link p99 ${summary.zoomP99Ms} ms (goal < ${GOALS.zoomP99Ms} ms: ${met(summary.zoomP99Ms < GOALS.zoomP99Ms)})`,
      // A Lightning payment settles at once: the processor's settled event is sent when the wallet
      // pays, so the seed's "payment confirmation" is that event → the patient's page (an on-chain
      // payment waits for its confirmations first, ~10 minutes a block, and cannot meet it).
      `  payment confirmation on Lightning (settled event → patient's page) p99 ${summary.pageP99Ms} ms (seed's goal < ${GOALS.lightningConfirmationMs} ms: ${met(summary.pageP99Ms < GOALS.lightningConfirmationMs)}; ×10 goal < ${GOALS.pageP99Ms} ms: ${met(summary.pageP99Ms < GOALS.pageP99Ms)})`,
      `  search ratio ${summary.ratio} (goal ≥ ${GOALS.ratio}: ${met(summary.ratio >= GOALS.ratio)}), cpu ratio ${summary.cpuRatio}`,
      `  mixed load ${Math.round(summary.requestsPerSecond)} req/s (p99 ${summary.mixP99Ms} ms over every endpoint, ${Math.round(summary.writeShare * 100)} % writes); server ${summary.serverCores} cores, ${summary.serverCpuMsPerRequest} ms cpu/req; postgres ${summary.postgresCpuMsPerRequest} ms cpu/req; pool wait mean ${summary.poolWaitMeanMs} ms; server event loop p99 ${summary.eventLoopP99Ms} ms; load generator ${summary.loadGeneratorCores} cores`,
    ];
    return { scenario: 'cryptocare', dialect, text: lines.join('\n'), figures: { rounds, summary } };
  },
};
