import http from 'node:http';
import type { Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TEST_SECRET_KEY, type TestDatabase } from '../src/testing/index.js';
import { redisUnavailable, testRedisUrl } from '../src/testing/test-redis.js';
import { type CliProcess, killCliProcesses, runCli, spawnCli } from './support/cli-process.js';
import { postgresTarget } from './support/each-database.js';
import { freePort } from './support/free-port.js';
import { httpGet } from './support/http-request.js';
import {
  connected,
  nextEvent,
  type PusherJs,
  pusherClient,
  pusherServer,
  testRealtimeApp,
} from './support/realtime-clients.js';
import { createTempDirectory, removeTempDirectories } from './support/temp-directories.js';

/** Each process is Node under tsx opening Postgres and Redis: seconds each on a busy 2-core machine. */
const START_TIMEOUT_MS = 90_000;
const BANNER = (line: { msg: string }) => line.msg.includes('processes (postgres + redis)');
const RESTARTING = 'A process exited unexpectedly; restarting it';
const RESTARTED = 'Restarted process is listening';

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function waitUntilGone(pids: readonly number[], timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (pids.some(isRunning)) {
    if (Date.now() > until) throw new Error(`Still running: ${pids.filter(isRunning).join(', ')}`);
    await sleep(50);
  }
}

/** The pid of the process that answers `/livez` (through `agent`'s connection, or a new one). */
async function answeringPid(url: string, agent?: http.Agent): Promise<number> {
  const response = await httpGet(`${url}/livez`, agent === undefined ? {} : { agent });
  expect(response.status).toBe(200);
  return (JSON.parse(response.body) as { pid: number }).pid;
}

/** New connections until each of `pids` answered one; fails after `attempts`. */
async function pidsAnswering(url: string, pids: readonly number[], attempts = 200): Promise<Set<number>> {
  const seen = new Set<number>();
  for (let attempt = 0; attempt < attempts && pids.some((pid) => !seen.has(pid)); attempt++)
    seen.add(await answeringPid(url));
  return seen;
}

/** The only connection a one-socket keep-alive agent holds between requests. */
function idleSocket(agent: http.Agent): Socket {
  const sockets = Object.values(agent.freeSockets).flat();
  expect(sockets).toHaveLength(1);
  return sockets[0] as Socket;
}

/**
 * A keep-alive agent of one connection, accepted by the process `pid`: every request sent through
 * it (while that connection stays open) is answered by that process.
 */
async function connectionTo(url: string, pid: number): Promise<http.Agent> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    if ((await answeringPid(url, agent)) === pid) return agent;
    agent.destroy();
  }
  throw new Error(`No connection reached process ${pid}`);
}

const skipReason = !postgresTarget.available ? postgresTarget.reason : redisUnavailable;
describe.skipIf(skipReason !== undefined)(
  `socle start --processes 2 [postgres + redis${skipReason ? `: ${skipReason}` : ''}]`,
  () => {
    const app = testRealtimeApp('-processes');
    let database: TestDatabase;
    /** Every pid a supervisor reported: killed in afterAll if a test left one behind. */
    const seenPids = new Set<number>();
    const clients: PusherJs[] = [];
    const agents: http.Agent[] = [];

    const start = async (): Promise<{ supervisor: CliProcess; url: string; pids: number[] }> => {
      const supervisor = spawnCli(['start', '--processes', '2'], {
        cwd: createTempDirectory('socle-processes-'),
        env: {
          DATABASE_URL: database.url as string,
          REDIS_URL: testRedisUrl,
          SECRET_KEY: TEST_SECRET_KEY,
          PORT: String(await freePort()),
          SHUTDOWN_TIMEOUT_MS: '3000',
          REALTIME_APP_ID: app.appId,
          REALTIME_APP_KEY: app.appKey,
          REALTIME_APP_SECRET: app.appSecret,
        },
      });
      const banner = await supervisor.waitForLog(BANNER, START_TIMEOUT_MS);
      const pids = banner.pids as number[];
      for (const pid of pids) seenPids.add(pid);
      expect(banner.processes).toBe(2);
      expect(new Set([supervisor.pid, ...pids]).size).toBe(3);
      return { supervisor, url: banner.url as string, pids };
    };

    beforeAll(async () => {
      database = await postgresTarget.create();
    });
    afterAll(async () => {
      for (const client of clients) client.disconnect();
      for (const agent of agents) agent.destroy();
      await killCliProcesses();
      for (const pid of seenPids) if (isRunning(pid)) process.kill(pid, 'SIGKILL');
      await database?.drop();
      await removeTempDirectories();
    });

    describe('one supervisor through its life', () => {
      let supervisor: CliProcess;
      let url: string;
      let pids: number[];
      beforeAll(async () => {
        ({ supervisor, url, pids } = await start());
      }, START_TIMEOUT_MS);

      it('spreads new connections on the one port between both processes', async () => {
        expect(await pidsAnswering(url, pids)).toEqual(new Set(pids));
        // The supervisor applied the migrations once; the processes did not.
        expect(
          supervisor.logs().filter((line) => line.msg === 'Applied migration' && line.pid !== supervisor.pid),
        ).toEqual([]);
      });

      it('delivers an event published through one process to a subscriber of the other', async () => {
        const subscriber = pusherClient(url, app);
        clients.push(subscriber);
        await connected(subscriber);
        const channel = subscriber.subscribe('room-processes');
        await nextEvent(channel, 'pusher:subscription_succeeded');
        const received: number[] = [];
        channel.bind('published', (data: { by: number }) => received.push(data.by));

        // The subscriber's socket is on one of the two processes: publishing through each of them
        // sends at least one event across processes (over Redis).
        for (const pid of pids) {
          const agent = await connectionTo(url, pid);
          agents.push(agent);
          const socket = idleSocket(agent);
          const publisher = pusherServer(url, app, undefined, agent);
          const response = await publisher.trigger('room-processes', 'published', { by: pid });
          expect(response.status).toBe(200);
          // Same connection before and after: that process answered the publication.
          expect(idleSocket(agent)).toBe(socket);
        }
        const until = Date.now() + 10_000;
        while (received.length < pids.length && Date.now() < until) await sleep(20);
        expect(received.sort()).toEqual([...pids].sort());
      });

      it('restarts a process killed with -9 while the port keeps answering', async () => {
        const [victim, survivor] = pids as [number, number];
        process.kill(victim, 'SIGKILL');
        const restarting = await supervisor.waitForLog(
          (line) => line.msg === RESTARTING && line.processPid === victim,
        );
        expect(restarting).toMatchObject({ signal: 'SIGKILL', restartInMs: 1000 });
        // The dead process's listening socket is gone with it: every new connection is answered.
        for (let request = 0; request < 20; request++) {
          expect(await answeringPid(url)).not.toBe(victim);
        }
        const restarted = await supervisor.waitForLog((line) => line.msg === RESTARTED, START_TIMEOUT_MS);
        const replacement = restarted.processPid as number;
        seenPids.add(replacement);
        expect([victim, survivor]).not.toContain(replacement);
        pids = [replacement, survivor];
        expect(await pidsAnswering(url, pids)).toEqual(new Set(pids));
      });

      it('forwards SIGTERM to every process, which drain; all exit and the supervisor exits 0', async () => {
        supervisor.signal('SIGTERM');
        const exit = await supervisor.waitForExit(30_000);
        expect(exit.code, supervisor.stderr()).toBe(0);
        for (const pid of pids) {
          expect(isRunning(pid)).toBe(false);
          expect(supervisor.logs()).toContainEqual(
            expect.objectContaining({ pid, msg: 'Stopped', drained: true }),
          );
        }
      });
    });

    it(
      'stops every process when the supervisor is killed with -9',
      async () => {
        const { supervisor, url, pids } = await start();
        supervisor.signal('SIGKILL');
        await supervisor.exited;
        await waitUntilGone(pids, 20_000);
        expect(
          supervisor.logs().filter((line) => line.msg === 'Supervisor gone: draining in-flight requests'),
        ).toHaveLength(2);
        await expect(httpGet(`${url}/livez`)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
      },
      START_TIMEOUT_MS,
    );
  },
);

describe('socle start --processes refusals', () => {
  afterEach(killCliProcesses);
  afterAll(removeTempDirectories);

  const refuse = (env: Record<string, string>, args = ['start', '--processes', '2']) => {
    const directory = createTempDirectory('socle-processes-');
    return runCli(args, {
      cwd: directory,
      env: { DATA_DIR: directory, SECRET_KEY: TEST_SECRET_KEY, ...env },
    });
  };

  it('exits 2 naming DATABASE_URL, REDIS_URL or PORT=0, whichever is missing', async () => {
    const database = 'postgres://postgres@127.0.0.1:1/none';
    const redis = 'redis://127.0.0.1:1';
    const [embedded, noRedis, portZero, fromEnv] = await Promise.all([
      refuse({ REDIS_URL: redis, PORT: '8080' }),
      refuse({ DATABASE_URL: database, PORT: '8080' }),
      refuse({ DATABASE_URL: database, REDIS_URL: redis, PORT: '0' }),
      refuse({ PROCESSES: '3' }, ['start']),
    ]);
    for (const result of [embedded, noRedis, portZero, fromEnv]) {
      expect(result.code, result.stderr).toBe(2);
      expect(result.stdout).toBe('');
      expect(result.stderr).not.toMatch(/^ {4}at /m);
    }
    expect(embedded.stderr).toContain('socle start cannot run 2 processes (PROCESSES / --processes)');
    expect(embedded.stderr).toMatch(/^ {2}DATABASE_URL is required/m);
    expect(embedded.stderr).not.toMatch(/REDIS_URL|PORT/);
    expect(noRedis.stderr).toMatch(/^ {2}REDIS_URL is required/m);
    expect(noRedis.stderr).not.toMatch(/DATABASE_URL|PORT/);
    expect(portZero.stderr).toMatch(/^ {2}PORT must be a fixed port, not 0/m);
    expect(portZero.stderr).not.toMatch(/DATABASE_URL|REDIS_URL/);
    expect(fromEnv.stderr).toContain('cannot run 3 processes');
  }, 60_000);

  it('exits 2 naming the flag for a bad --processes, and refuses it on other commands', async () => {
    const [bad, elsewhere] = await Promise.all([
      refuse({}, ['start', '--processes', 'lots']),
      refuse({}, ['migrate', '--processes', '2']),
    ]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^ {2}--processes must be auto or an integer from 1 to 1024, got "lots"$/m);
    expect(elsewhere.code).toBe(2);
    expect(elsewhere.stderr).toContain('--processes applies to socle start only');
  }, 60_000);
});
