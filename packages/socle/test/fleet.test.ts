import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { postgresRequirement, TEST_PASSWORD, TEST_SECRET_KEY } from '../src/testing/index.js';
import {
  canRunPrivateClusters,
  createStreamingPair,
  freePort,
  type StreamingPair,
} from './fixtures/streaming-replica.js';
import { type CliProcess, killCliProcesses, spawnLogged } from './support/cli-process.js';
import {
  connected,
  nextEvent,
  type PresenceChannel,
  type PusherJs,
  pusherClient,
  testRealtimeApp,
} from './support/realtime-clients.js';

/**
 * The fleet on one machine, with real processes: HAProxy (the configuration shipped in
 * deploy/haproxy) in front of three `socle start` nodes health-checked on /readyz, a Postgres
 * primary and its streaming replica (pg_basebackup), Redis and a `socle worker`. Under steady
 * load through HAProxy: a rolling restart (SIGTERM, drain, start again, node by node) fails no
 * request; `kill -9` of a node fails at most the requests it had in flight, and the realtime
 * clients it held reconnect through HAProxy to the others, presence converging everywhere.
 */

const HAPROXY = process.env.SOCLE_TEST_HAPROXY ?? '/usr/sbin/haproxy';
const REDIS_SERVER = '/usr/bin/redis-server';
const HAPROXY_CONFIG = fileURLToPath(new URL('../../../deploy/haproxy/haproxy.cfg', import.meta.url));
const PROBE_MODULE = fileURLToPath(new URL('./fixtures/replica-probe-module.ts', import.meta.url));
/**
 * The built CLI (`npm test` builds first), run by Node itself: a node starts in a fraction of the
 * time it takes under tsx, and this test starts six. Node strips the probe module's types itself.
 */
const BUILT_CLI = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));
/** Concurrent clients of the load; also the most requests a killed node can have in flight. */
const CLIENTS = 6;
/** pusher-js clients in one presence channel, connected one by one through HAProxy. */
const REALTIME_CLIENTS = 6;
const PRESENCE_CHANNEL = 'presence-fleet';

const inCi = Boolean(process.env.CI);
const haproxyInstalled = existsSync(HAPROXY);
if (inCi && !haproxyInstalled)
  throw new Error(`The fleet test needs HAProxy (${HAPROXY}); .ci/run installs the Debian package`);
if (inCi && !canRunPrivateClusters())
  throw new Error('The fleet test needs the Postgres 15 server binaries (initdb, pg_basebackup)');
if (!existsSync(BUILT_CLI))
  throw new Error(`The fleet test runs the built CLI: run npm run build (${BUILT_CLI})`);
const runnable = haproxyInstalled && canRunPrivateClusters() && postgresRequirement() !== 'off';

interface Node {
  readonly port: number;
  process: CliProcess;
}

interface LoadResult {
  total: number;
  readonly failures: string[];
  /** Ids of writes answered 200: each must be in the database afterwards. */
  readonly acknowledged: string[];
}

/** Until `stop()`: CLIENTS loops, each alternating a write (POST, no Idempotency-Key) and a replica read. */
function startLoad(base: string) {
  const result: LoadResult = { total: 0, failures: [], acknowledged: [] };
  let stopped = false;
  const client = async (index: number) => {
    for (let n = 0; !stopped; n++) {
      const id = `c${index}-${n}-${randomBytes(3).toString('hex')}`;
      const write = n % 2 === 0;
      try {
        const response = write
          ? await fetch(`${base}/items`, {
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify({ id }),
            })
          : await fetch(`${base}/items/count`);
        const body = await response.text();
        if (response.status !== 200)
          result.failures.push(`${write ? 'POST' : 'GET'} ${response.status} ${body}`);
        else if (write) result.acknowledged.push(id);
      } catch (error) {
        result.failures.push(
          `${write ? 'POST' : 'GET'} ${(error as Error).message} ${String((error as Error).cause)}`,
        );
      }
      result.total++;
    }
  };
  const clients = Array.from({ length: CLIENTS }, (_, index) => client(index));
  return {
    result,
    async stop(): Promise<LoadResult> {
      stopped = true;
      await Promise.all(clients);
      return result;
    },
  };
}

/** Resolves once `count` more requests have completed: progress, not time. */
async function waitForRequests(result: LoadResult, count: number): Promise<void> {
  const target = result.total + count;
  for (let attempt = 0; attempt < 3000 && result.total < target; attempt++)
    await new Promise((resolve) => setTimeout(resolve, 10));
  if (result.total < target) throw new Error(`the load stalled at ${result.total} requests`);
}

describe.skipIf(!runnable)('fleet: HAProxy, three nodes, primary + replica, Redis, a worker', () => {
  let pair: StreamingPair;
  let redis: ChildProcess | undefined;
  let haproxy: ChildProcess;
  let base: string;
  const nodes: Node[] = [];
  let worker: CliProcess;
  let env: Record<string, string>;
  const realtimeApp = testRealtimeApp('-fleet');
  const realtimeClients: PusherJs[] = [];

  const socle = (args: readonly string[], extra: Record<string, string> = {}) =>
    spawnLogged(process.execPath, [BUILT_CLI, ...args], { env: { ...env, ...extra } });
  const startNode = (port: number) => socle(['start'], { PORT: String(port), JOBS_QUEUES: '' });
  const listening = (cli: CliProcess) => cli.waitForLog((line) => line.msg.includes('listening on'), 90_000);

  /** Waits until HAProxy sends requests to the process `pid` (its checks passed `rise` times). */
  async function waitUntilServed(pid: number): Promise<void> {
    let last = '';
    for (let attempt = 0; attempt < 400; attempt++) {
      const response = await fetch(`${base}/livez`).catch((error: Error) => error);
      last = response instanceof Error ? String(response.cause ?? response) : await response.text();
      if (
        !(response instanceof Error) &&
        response.status === 200 &&
        (JSON.parse(last) as { pid: number }).pid === pid
      )
        return;
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
    throw new Error(`HAProxy never sent a request to process ${pid}; last answer: ${last}`);
  }

  beforeAll(async () => {
    pair = await createStreamingPair();
    let redisUrl = 'redis://127.0.0.1:6379';
    if (existsSync(REDIS_SERVER)) {
      const redisPort = await freePort();
      redis = spawn(
        REDIS_SERVER,
        ['--port', String(redisPort), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        {
          stdio: 'ignore',
        },
      );
      redisUrl = `redis://127.0.0.1:${redisPort}`;
    }
    env = {
      DATABASE_URL: pair.primaryUrl,
      DATABASE_REPLICA_URLS: pair.replicaUrl,
      REDIS_URL: redisUrl,
      REDIS_NAMESPACE: `fleet-${randomBytes(4).toString('hex')}`,
      SECRET_KEY: TEST_SECRET_KEY,
      SOCLE_MODULES: PROBE_MODULE,
      TRUST_PROXY: '1',
      // Longer than HAProxy's fall (2) x inter (200 ms): it stops sending before the listener closes.
      SHUTDOWN_DRAIN_DELAY_MS: '1000',
      SHUTDOWN_TIMEOUT_MS: '10000',
      LOG_LEVEL: 'info',
      DATABASE_POOL_MAX: '5',
      MIGRATE_ON_START: 'false',
      REALTIME_APP_ID: realtimeApp.appId,
      REALTIME_APP_KEY: realtimeApp.appKey,
      REALTIME_APP_SECRET: realtimeApp.appSecret,
      REALTIME_CHANNEL_RULES: `${PRESENCE_CHANNEL}:user`,
      // A dead node's presence members are removed by the others within 1.25 x this.
      REALTIME_NODE_EXPIRY_SECONDS: '2',
    };
    const ports = [await freePort(), await freePort(), await freePort()];
    // As a deploy does it: `socle migrate` once, then nodes that do not migrate (MIGRATE_ON_START=false).
    const migrate = socle(['migrate']);
    expect((await migrate.waitForExit(90_000)).code).toBe(0);
    for (const port of ports) nodes.push({ port, process: startNode(port) });
    await Promise.all(nodes.map((node) => listening(node.process)));
    worker = socle(['worker']);
    await worker.waitForLog((line) => line.msg.includes('worker started'), 60_000);
    const listenPort = await freePort();
    base = `http://127.0.0.1:${listenPort}`;
    haproxy = spawn(HAPROXY, ['-db', '-f', HAPROXY_CONFIG], {
      env: {
        PATH: process.env.PATH ?? '/usr/bin:/bin',
        SOCLE_LISTEN: `127.0.0.1:${listenPort}`,
        SOCLE_CHECK_INTER: '200ms',
        SOCLE_NODE_1: `127.0.0.1:${nodes[0]?.port}`,
        SOCLE_NODE_2: `127.0.0.1:${nodes[1]?.port}`,
        SOCLE_NODE_3: `127.0.0.1:${nodes[2]?.port}`,
      },
      stdio: 'ignore',
    });
    for (const node of nodes) await waitUntilServed(node.process.pid);
  }, 150_000);

  afterAll(async () => {
    for (const client of realtimeClients) client.disconnect();
    haproxy?.kill('SIGKILL');
    await killCliProcesses();
    redis?.kill('SIGKILL');
    await pair?.destroy();
  });

  it('restarts every node behind HAProxy under load without a failed request or a lost write', async () => {
    const load = startLoad(base);
    await waitForRequests(load.result, 50);
    for (const node of nodes) {
      node.process.signal('SIGTERM');
      const exit = await node.process.waitForExit(30_000);
      expect(exit.code).toBe(0);
      // Traffic went on while the node was away.
      await waitForRequests(load.result, 20);
      node.process = startNode(node.port);
      await listening(node.process);
      await waitUntilServed(node.process.pid);
      await waitForRequests(load.result, 20);
    }
    const result = await load.stop();
    expect(result.failures).toEqual([]);
    expect(result.total).toBeGreaterThan(200);
    // Every acknowledged write is on the primary, and has reached the replica.
    await pair.waitForReplay();
    const ids = result.acknowledged.map((id) => `'${id}'`).join(',');
    const onPrimary = await pair.sql(
      'primary',
      `select count(*) from replica_probe.items where id in (${ids})`,
    );
    const onReplica = await pair.sql(
      'replica',
      `select count(*) from replica_probe.items where id in (${ids})`,
    );
    expect(Number(onPrimary)).toBe(result.acknowledged.length);
    expect(Number(onReplica)).toBe(result.acknowledged.length);
  }, 170_000);

  /** `promise`, or a failure naming `what` after 20 s. */
  async function within<T>(promise: Promise<T>, what: string): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), 20_000);
    });
    try {
      return await Promise.race([promise, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Signs a user up through HAProxy and connects a pusher-js client in the presence channel. */
  async function joinPresence(index: number): Promise<{ client: PusherJs; userId: string }> {
    const signUp = await fetch(`${base}/auth/sign-up`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        email: `fleet-${index}-${randomBytes(3).toString('hex')}@example.com`,
        password: TEST_PASSWORD,
      }),
    });
    expect(signUp.status).toBe(201);
    const { tokens } = (await signUp.json()) as { tokens: { accessToken: string } };
    const client = pusherClient(base, realtimeApp, tokens.accessToken);
    realtimeClients.push(client);
    await within(connected(client), `client ${index} to connect`);
    const channel = client.subscribe(PRESENCE_CHANNEL) as PresenceChannel;
    const refused = nextEvent<{ status: number; error: string }>(channel, 'pusher:subscription_error').then(
      (error) => {
        throw new Error(`client ${index} was refused ${PRESENCE_CHANNEL}: ${JSON.stringify(error)}`);
      },
    );
    await within(
      Promise.race([nextEvent(channel, 'pusher:subscription_succeeded'), refused]),
      `client ${index} to join ${PRESENCE_CHANNEL}`,
    );
    return { client, userId: channel.members.me.id as string };
  }

  /** Waits (bounded) until every client is connected and sees exactly `userIds` in the channel. */
  async function presenceConverged(userIds: readonly string[]): Promise<void> {
    const expected = [...userIds].sort();
    const seen = () =>
      realtimeClients.map((client) => {
        const members: string[] = [];
        (client.channel(PRESENCE_CHANNEL) as PresenceChannel | undefined)?.members.each(
          (member: { id: string }) => members.push(member.id),
        );
        return { state: client.connection.state, members: members.sort() };
      });
    for (let attempt = 0; attempt < 600; attempt++) {
      if (seen().every((view) => view.state === 'connected' && view.members.join() === expected.join()))
        return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(seen()).toEqual(realtimeClients.map(() => ({ state: 'connected', members: expected })));
  }

  it('loses only requests in flight on a node killed with SIGKILL; reads are retried elsewhere; its realtime clients reconnect to the others', async () => {
    // One after the other, through HAProxy.
    const joined: { client: PusherJs; userId: string }[] = [];
    for (let index = 0; index < REALTIME_CLIENTS; index++) joined.push(await joinPresence(index));
    const userIds = joined.map((member) => member.userId);
    await presenceConverged(userIds);
    let reconnections = 0;
    for (const { client } of joined)
      client.connection.bind('state_change', ({ previous }: { previous: string; current: string }) => {
        if (previous === 'connected') reconnections++;
      });

    const load = startLoad(base);
    await waitForRequests(load.result, 50);
    // The node to kill holds some of the realtime clients: which one depends on HAProxy's round
    // robin over every request before (sign-ups and authorizations go through it too), so ask
    // each node how many sockets it has.
    const socketsOn = async (node: Node) => {
      const metrics = await (await fetch(`http://127.0.0.1:${node.port}/metrics`)).text();
      return Number(/^socle_realtime_connections (\d+)$/m.exec(metrics)?.[1] ?? 0);
    };
    const held = await Promise.all(nodes.map(socketsOn));
    expect(held.reduce((sum, count) => sum + count, 0)).toBe(REALTIME_CLIENTS);
    const victimIndex = held.findIndex((count) => count > 0);
    const victim = nodes[victimIndex] as Node;
    const victimSockets = held[victimIndex] as number;
    process.kill(victim.process.pid, 'SIGKILL');
    await victim.process.waitForExit(10_000);
    // Long enough for HAProxy to mark it down and for traffic to flow on the two others.
    await waitForRequests(load.result, 200);
    const result = await load.stop();
    // At most one request per client was in flight on the killed node; retries cover reads and
    // refused connections, so only writes (no Idempotency-Key) that reached it may fail.
    expect(result.failures.length).toBeLessThanOrEqual(CLIENTS);
    for (const failure of result.failures) expect(failure).toMatch(/^POST /);
    const { pid } = (await (await fetch(`${base}/livez`)).json()) as { pid: number };
    expect(pid).not.toBe(victim.process.pid);
    // The killed node's sockets reconnected through HAProxy to the others and joined again; the
    // others dropped its members (node expiry) and see them back: every client sees all six.
    for (let attempt = 0; attempt < 600 && reconnections < victimSockets; attempt++)
      await new Promise((resolve) => setTimeout(resolve, 50));
    expect(reconnections).toBeGreaterThanOrEqual(victimSockets);
    await presenceConverged(userIds);
  }, 90_000);
});
