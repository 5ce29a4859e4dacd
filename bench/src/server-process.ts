import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { processCpuSeconds } from './process-cpu.js';
import {
  isChildMessage,
  type RequestHeaders,
  SERVER_SETTINGS_ENV,
  type ServerSettings,
} from './server-protocol.js';

/**
 * How long a child may take to migrate, seed and listen when `--start-timeout` is not given. 60 s
 * was too short on a loaded 2-core machine (load 31–35: fleet nodes took longer, twice); a child
 * that is merely starved finishes well within this, one that hangs is still reported.
 */
export const DEFAULT_START_TIMEOUT_SECONDS = 180;
/** How long a child gets to close after SIGTERM before it is killed. */
const STOP_TIMEOUT_MS = 5_000;
/** Lines of child output kept to explain a failure. */
const KEPT_OUTPUT_LINES = 40;

/** A server running in its own process (its own event loop, away from the load generator's). */
export interface ServerProcess {
  readonly url: string;
  /** Headers the server asked to receive on every request (empty for most servers). */
  readonly requestHeaders: RequestHeaders;
  readonly pid: number;
  /** Profiles the child's CPU from now until {@link ServerProcess.stopProfile}. */
  startProfile(): void;
  /** Writes the profile taken since `startProfile` to `path` (a `.cpuprofile` file). */
  stopProfile(path: string): Promise<void>;
  /** SIGTERM, then SIGKILL if it has not exited in time. Idempotent. */
  stop(): Promise<void>;
}

export interface SpawnServerOptions {
  /** Label for its output lines, e.g. `socle`. */
  readonly label: string;
  /** The compiled entry point (`bench/dist/…/x-server.js`). */
  readonly entry: URL;
  readonly settings: ServerSettings;
  readonly signal: AbortSignal;
  /** How long it may take to report ready (`--start-timeout`); {@link DEFAULT_START_TIMEOUT_SECONDS} if not given. */
  readonly startTimeoutSeconds?: number;
}

function forwardOutput(child: ChildProcess, label: string, kept: string[]): void {
  for (const stream of [child.stdout, child.stderr]) {
    let pending = '';
    stream?.setEncoding('utf8');
    stream?.on('data', (chunk: string) => {
      const lines = (pending + chunk).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        kept.push(line);
        if (kept.length > KEPT_OUTPUT_LINES) kept.shift();
        // Only what a quiet server would not say: its ready line stays out of the table.
        if (!line.startsWith('listening on ')) process.stderr.write(`  [${label}] ${line}\n`);
      }
    });
  }
}

/**
 * Starts a server entry point with this Node binary in a child process and waits until it
 * reports its URL. Rejects with the child's last output when it exits or times out first.
 */
export async function spawnServer(options: SpawnServerOptions): Promise<ServerProcess> {
  const child = spawn(process.execPath, [fileURLToPath(options.entry)], {
    stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    env: { ...process.env, [SERVER_SETTINGS_ENV]: JSON.stringify(options.settings) },
  });
  const output: string[] = [];
  forwardOutput(child, options.label, output);
  const exited = once(child, 'exit').then(() => undefined);

  let stopping: Promise<void> | undefined;
  const stop = () => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    })();
    return stopping;
  };

  const startTimeoutSeconds = options.startTimeoutSeconds ?? DEFAULT_START_TIMEOUT_SECONDS;
  const startedAt = performance.now();
  const ready = await new Promise<{ url: string; requestHeaders: RequestHeaders }>((resolve, reject) => {
    // Settled once: a child that reports ready while its lateness is being described is kept.
    let settled = false;
    const fail = (reason: string, facts = '') => {
      if (settled) return;
      settled = true;
      cleanup();
      void stop();
      const tail =
        output.length > 0
          ? `; its last ${output.length} line(s) of output:\n${output.map((line) => `    ${line}`).join('\n')}`
          : '; it printed nothing';
      reject(new Error(`${options.label} server (pid ${child.pid}) ${reason}${facts}${tail}`));
    };
    const onMessage = (message: unknown) => {
      if (isChildMessage(message) && message.type === 'ready' && !settled) {
        settled = true;
        cleanup();
        resolve({ url: message.url, requestHeaders: message.requestHeaders ?? {} });
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null) =>
      fail(`exited before it was ready (${signal ?? `code ${code}`})`);
    const onAbort = () => fail('start was interrupted');
    // Late: say whether it was starved (little CPU used on a busy machine) or stuck working, read
    // before it is stopped, with what it printed.
    const onLate = () => {
      const pid = child.pid;
      void (pid === undefined ? Promise.resolve(undefined) : processCpuSeconds(pid))
        .catch(() => undefined)
        .then((cpuSeconds) => {
          const elapsed = ((performance.now() - startedAt) / 1000).toFixed(1);
          const cpu = cpuSeconds === undefined ? 'unknown' : `${cpuSeconds.toFixed(1)} s`;
          const [load] = os.loadavg();
          fail(
            `was not ready within ${startTimeoutSeconds} s (--start-timeout)`,
            ` (${elapsed} s since spawn, CPU used ${cpu}, machine load average ${load?.toFixed(1)} on ${os.cpus().length} cores)`,
          );
        });
    };
    const timer = setTimeout(onLate, startTimeoutSeconds * 1000);
    const cleanup = () => {
      clearTimeout(timer);
      child.off('message', onMessage);
      child.off('exit', onExit);
      options.signal.removeEventListener('abort', onAbort);
    };
    child.on('message', onMessage);
    child.on('exit', onExit);
    if (options.signal.aborted) onAbort();
    else options.signal.addEventListener('abort', onAbort, { once: true });
  });

  return {
    url: ready.url,
    requestHeaders: ready.requestHeaders,
    pid: child.pid ?? -1,
    startProfile() {
      child.send({ type: 'start-profile' });
    },
    async stopProfile(path) {
      const written = new Promise<void>((resolve, reject) => {
        const onMessage = (message: unknown) => {
          if (isChildMessage(message) && message.type === 'profile-written' && message.path === path) {
            child.off('message', onMessage);
            child.off('exit', onExit);
            resolve();
          }
        };
        const onExit = () => reject(new Error(`${options.label} server exited before writing its profile`));
        child.on('message', onMessage);
        child.once('exit', onExit);
      });
      child.send({ type: 'stop-profile', path });
      await written;
    },
    stop,
  };
}
