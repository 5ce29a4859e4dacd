import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { freePort } from './free-port.js';

/** A redis-server owned by one test: it may be killed, restarted, frozen and thrown away. */
export interface DisposableRedis {
  readonly url: string;
  /** Starts the server (again) on the same port; resolves once it answers PING. */
  start(): Promise<void>;
  /** SIGKILL: a crash, connections reset, nothing saved. */
  kill(): Promise<void>;
  /** SIGSTOP: the server keeps its sockets open and answers nothing. */
  freeze(): void;
  thaw(): void;
  destroy(): Promise<void>;
}

/** Starts `redis-server` (from PATH, or SOCLE_TEST_REDIS_SERVER) without persistence on a free loopback port. */
export async function startDisposableRedis(): Promise<DisposableRedis> {
  const binary = process.env.SOCLE_TEST_REDIS_SERVER ?? 'redis-server';
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;
  let frozen = false;

  const server: DisposableRedis = {
    url,
    async start() {
      const started = spawn(
        binary,
        ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
        { stdio: 'ignore' },
      );
      child = started;
      const failed = once(started, 'error');
      const probe = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      probe.on('error', () => undefined);
      try {
        for (let attempt = 0; ; attempt++) {
          const answered = await Promise.race([
            probe
              .connect()
              .then(() => probe.ping())
              .then(() => true)
              .catch(() => false),
            failed.then(([error]) => {
              throw error;
            }),
          ]);
          if (answered) return;
          if (attempt > 100) throw new Error(`redis-server did not answer on port ${port}`);
          probe.disconnect();
          await sleep(50);
        }
      } finally {
        probe.disconnect();
      }
    },
    async kill() {
      const running = child;
      child = undefined;
      if (running === undefined || running.exitCode !== null) return;
      const exited = once(running, 'exit');
      running.kill('SIGKILL');
      await exited;
    },
    freeze() {
      child?.kill('SIGSTOP');
      frozen = true;
    },
    thaw() {
      child?.kill('SIGCONT');
      frozen = false;
    },
    async destroy() {
      if (frozen) server.thaw();
      await server.kill();
    },
  };
  await server.start();
  return server;
}
