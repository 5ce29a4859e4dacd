import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';

/**
 * The CLI entry point, run from source under tsx (no build needed). SOCLE_TEST_CLI_ENTRY runs these
 * tests against another build of the CLI (a patched copy, or `dist/cli/main.js`).
 */
export const CLI_ENTRY =
  process.env.SOCLE_TEST_CLI_ENTRY ?? fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
/** tsx's loader by absolute URL: children run in temporary directories where `tsx` does not resolve. */
const TSX_LOADER = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;

/** One line of Socle's JSON log. */
export interface LogLine {
  readonly level: number;
  readonly msg: string;
  readonly [field: string]: unknown;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface CliProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  /** Everything written so far. */
  stdout(): string;
  stderr(): string;
  /** Lines of stdout that parse as JSON log lines. */
  logs(): LogLine[];
  /** Resolves with the first log line (past or future) matching `predicate`; rejects on exit or timeout. */
  waitForLog(predicate: (line: LogLine) => boolean, timeoutMs?: number): Promise<LogLine>;
  /** Resolves when the process exits. */
  readonly exited: Promise<Exit>;
  /** Resolves with the exit, or rejects after `timeoutMs`. */
  waitForExit(timeoutMs?: number): Promise<Exit>;
  signal(signal: NodeJS.Signals): void;
}

export interface SpawnCliOptions {
  /** Added to a minimal environment (PATH, HOME, LOG_FORMAT=json, HOST=127.0.0.1, PORT=0). */
  readonly env?: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** A process group of its own (its pid is the group id), as a shell starts a foreground job. */
  readonly detached?: boolean;
}

const running = new Set<CliProcess>();

function parseLogLine(text: string): LogLine | undefined {
  if (!text.startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === 'object' && value !== null && 'msg' in value && 'level' in value) {
      return value as LogLine;
    }
  } catch {
    // not a log line
  }
  return undefined;
}

function describeOutput(process: CliProcess): string {
  return `\n--- stdout ---\n${process.stdout()}\n--- stderr ---\n${process.stderr()}`;
}

/** Starts `socle <args>` in a child process. Every process started here is killed by `killCliProcesses()`. */
export function spawnCli(args: readonly string[], options: SpawnCliOptions = {}): CliProcess {
  return spawnLogged(process.execPath, ['--import', TSX_LOADER, CLI_ENTRY, ...args], options);
}

/**
 * Starts any command that writes Socle's JSON log on stdout (`npm start`), with the environment and
 * bookkeeping of `spawnCli`.
 */
export function spawnLogged(
  command: string,
  args: readonly string[],
  options: SpawnCliOptions = {},
): CliProcess {
  const child = spawn(command, args, {
    cwd: options.cwd,
    detached: options.detached === true,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/tmp',
      LOG_FORMAT: 'json',
      HOST: '127.0.0.1',
      PORT: '0',
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  if (child.pid === undefined) throw new Error(`Could not spawn ${process.execPath}`);
  let stdout = '';
  let stderr = '';
  let pending = '';
  const lines: LogLine[] = [];
  const waiters = new Set<(line: LogLine) => void>();
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    stdout += chunk;
    pending += chunk;
    const complete = pending.split('\n');
    pending = complete.pop() ?? '';
    for (const text of complete) {
      const line = parseLogLine(text);
      if (line === undefined) continue;
      lines.push(line);
      for (const waiter of waiters) waiter(line);
    }
  });
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<Exit>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal }));
  });
  // 'exit' may fire before the pipes are drained; wait for 'close' so output is complete.
  const closed = new Promise<Exit>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal }));
  });

  const cli: CliProcess = {
    pid: child.pid,
    child,
    stdout: () => stdout,
    stderr: () => stderr,
    logs: () => [...lines],
    exited: closed,
    waitForLog(predicate, timeoutMs = 20_000) {
      const earlier = lines.find(predicate);
      if (earlier) return Promise.resolve(earlier);
      return new Promise<LogLine>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(waiter);
          reject(new Error(`No matching log line within ${timeoutMs} ms${describeOutput(cli)}`));
        }, timeoutMs);
        const waiter = (line: LogLine) => {
          if (!predicate(line)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          resolve(line);
        };
        waiters.add(waiter);
        void exited.then((exit) => {
          if (!waiters.has(waiter)) return;
          clearTimeout(timer);
          waiters.delete(waiter);
          // Let the last chunks of output arrive before reporting.
          void closed.then(() => {
            const late = lines.find(predicate);
            if (late) resolve(late);
            else
              reject(
                new Error(
                  `Exited (code ${exit.code}, signal ${exit.signal}) before a matching log line${describeOutput(cli)}`,
                ),
              );
          });
        });
      });
    },
    waitForExit(timeoutMs = 20_000) {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(
          () => reject(new Error(`Still running after ${timeoutMs} ms${describeOutput(cli)}`)),
          timeoutMs,
        );
      });
      return Promise.race([closed, timeout]).finally(() => clearTimeout(timer));
    },
    signal(signal) {
      child.kill(signal);
    },
  };
  running.add(cli);
  void closed.then(() => running.delete(cli));
  return cli;
}

export interface CliResult extends Exit {
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * How many `runCli` processes run at once in one test file: each is a Node process that loads tsx
 * and Socle, and eight started together on a busy 2-core machine left one still starting after
 * 30 s. Later calls wait their turn before their process, and their timeout, start. (A queue of a
 * few lines: no dependency for it.)
 */
const MAX_CONCURRENT_RUNS = Math.max(2, availableParallelism());
let runsActive = 0;
const runsWaiting: (() => void)[] = [];

async function takeRunSlot(): Promise<void> {
  if (runsActive < MAX_CONCURRENT_RUNS) {
    runsActive += 1;
    return;
  }
  await new Promise<void>((resolve) => runsWaiting.push(resolve));
}

function releaseRunSlot(): void {
  const next = runsWaiting.shift();
  if (next) next();
  else runsActive -= 1;
}

/** Runs `socle <args>` to completion (at most MAX_CONCURRENT_RUNS at once; `timeoutMs` counts from its start). */
export async function runCli(
  args: readonly string[],
  options: SpawnCliOptions = {},
  timeoutMs = 30_000,
): Promise<CliResult> {
  await takeRunSlot();
  try {
    const cli = spawnCli(args, options);
    const exit = await cli.waitForExit(timeoutMs);
    return { ...exit, stdout: cli.stdout(), stderr: cli.stderr() };
  } finally {
    releaseRunSlot();
  }
}

/** Waits for the startup banner and returns the URL the server listens on. */
// Generous: spawning Node with tsx and opening PGlite took over 30 s at load 24 on two cores; a
// healthy start resolves as soon as the banner is printed, so only a broken one waits this long.
export async function waitForListening(cli: CliProcess, timeoutMs = 90_000): Promise<string> {
  const banner = await cli.waitForLog((line) => typeof line.url === 'string', timeoutMs);
  return banner.url as string;
}

/** SIGKILLs every CLI process still running; call from afterEach/afterAll. */
export async function killCliProcesses(): Promise<void> {
  await Promise.all(
    [...running].map(async (cli) => {
      cli.signal('SIGKILL');
      await cli.exited;
    }),
  );
}
