import { type ChildProcess, fork } from 'node:child_process';
import type { Config } from '../kernel/config/index.js';
import type { Logger } from '../kernel/log/index.js';
import { SOCLE_VERSION } from '../kernel/socle.js';
import { EXIT, EXIT_AFTER_DEADLINE_MS } from './exit-codes.js';
import { onStopSignals } from './stop-signals.js';

/**
 * Set in the environment of each process a supervisor starts (to its index, 0…N-1): that process
 * listens with `reusePort`, reports to the supervisor, and drains if the supervisor disappears.
 * Internal: not a setting.
 */
export const SUPERVISED_PROCESS_ENV = 'SOCLE_SUPERVISED_PROCESS';

/** What a supervised process sends its supervisor (IPC) once it listens. */
export interface ListeningMessage {
  readonly type: 'socle:listening';
  readonly url: string;
}

function isListeningMessage(message: unknown): message is ListeningMessage {
  return (
    typeof message === 'object' &&
    message !== null &&
    (message as { type?: unknown }).type === 'socle:listening' &&
    typeof (message as { url?: unknown }).url === 'string'
  );
}

/**
 * Delay before restarting a process that exited unexpectedly: the first restart waits `firstMs`,
 * each further crash of the same process doubles it up to `maxMs`, so a crash loop does not spin.
 * A process that stayed up `stableAfterMs` starts over from `firstMs`.
 */
const RESTART_BACKOFF = { firstMs: 1000, maxMs: 30_000, stableAfterMs: 60_000 } as const;

/** Margin past SHUTDOWN_TIMEOUT_MS before processes still running are killed: theirs, plus 5 s. */
const KILL_AFTER_DEADLINE_MS = EXIT_AFTER_DEADLINE_MS + 5000;

/**
 * Why this configuration cannot run several processes, one line per setting; empty when it can.
 * Every process must see the same state, so nothing may stay inside one of them.
 */
export function supervisionProblems(config: Config): string[] {
  const problems: string[] = [];
  if (config.databaseUrl === undefined)
    problems.push(
      'DATABASE_URL is required: the embedded database (PGlite) can be opened by one process only',
    );
  if (config.redisUrl === undefined)
    problems.push(
      'REDIS_URL is required: realtime fan-out, presence and rate limits must be shared between the processes',
    );
  if (config.port === 0)
    problems.push('PORT must be a fixed port, not 0: each process would listen on a free port of its own');
  return problems;
}

export interface SuperviseOptions {
  readonly config: Config;
  readonly log: Logger;
  /** The CLI script each process runs (`process.argv[1]`)… */
  readonly script: string;
  /** …with these Node options (`process.execArgv`: a loader when run under tsx)… */
  readonly execArgv: readonly string[];
  /** …and these arguments (`start`, `--config <file>`). */
  readonly args: readonly string[];
  /** The supervisor's environment; each process gets it with PROCESSES=1 and MIGRATE_ON_START=false. */
  readonly env: NodeJS.ProcessEnv;
}

interface Slot {
  readonly index: number;
  child: ChildProcess | undefined;
  startedAt: number;
  listening: boolean;
  restartDelayMs: number;
  restartTimer: NodeJS.Timeout | undefined;
}

/**
 * Runs `config.processes` Socle processes that all listen on HOST:PORT with SO_REUSEPORT: the kernel
 * spreads connections between them and no request passes through the supervisor (node:cluster
 * would accept every connection here and hand it over). Restarts a process that exits unexpectedly,
 * with a backoff; forwards SIGTERM/SIGINT to every process, which drain as one process does; a
 * second signal kills them. Resolves with the exit code: 0 when every process stopped cleanly on a
 * signal, 1 when one failed or the deadline passed, a process's own code (2 for configuration) when
 * one could not start.
 */
export function superviseProcesses(options: SuperviseOptions): Promise<number> {
  const { config, log } = options;
  return new Promise<number>((resolve) => {
    let state: 'starting' | 'running' | 'stopping' = 'starting';
    let exitCode: number = EXIT.ok;
    let killTimer: NodeJS.Timeout | undefined;
    let finished = false;
    let stopListening = () => {};
    const slots: Slot[] = Array.from({ length: config.processes }, (_, index) => ({
      index,
      child: undefined,
      startedAt: 0,
      listening: false,
      restartDelayMs: RESTART_BACKOFF.firstMs,
      restartTimer: undefined,
    }));

    const finish = (code: number) => {
      if (finished) return;
      finished = true;
      clearTimeout(killTimer);
      stopListening();
      resolve(code);
    };
    const allExited = () => slots.every((slot) => slot.child === undefined);
    const killAll = () => {
      for (const slot of slots) slot.child?.kill('SIGKILL');
    };

    const stop = (signal: NodeJS.Signals, code: number) => {
      state = 'stopping';
      exitCode = code;
      for (const slot of slots) {
        clearTimeout(slot.restartTimer);
        slot.restartTimer = undefined;
        slot.child?.kill(signal);
      }
      // Each process leaves by itself SHUTDOWN_TIMEOUT_MS + 5 s after the signal at the latest.
      killTimer = setTimeout(() => {
        log.error('Processes still running past the shutdown deadline; killing them');
        killAll();
        finish(EXIT.failure);
      }, config.shutdownTimeoutMs + KILL_AFTER_DEADLINE_MS);
      if (allExited()) finish(exitCode);
    };

    const onListening = (slot: Slot, url: string) => {
      slot.listening = true;
      if (state === 'starting' && slots.every((each) => each.listening)) {
        state = 'running';
        log.info(
          {
            url,
            processes: slots.length,
            pids: slots.map((each) => each.child?.pid),
            mode: 'postgres',
            version: SOCLE_VERSION,
          },
          `Socle ${SOCLE_VERSION} listening on ${url} with ${slots.length} processes (postgres + redis)`,
        );
      } else if (state === 'running') {
        log.info({ process: slot.index, processPid: slot.child?.pid }, 'Restarted process is listening');
      }
    };

    const onExit = (slot: Slot, child: ChildProcess, code: number | null, signal: NodeJS.Signals | null) => {
      if (slot.child === child) slot.child = undefined;
      const details = { process: slot.index, processPid: child.pid, code, signal };
      if (state === 'stopping') {
        if (code !== EXIT.ok && exitCode === EXIT.ok) exitCode = EXIT.failure;
        if (code === EXIT.ok) log.info(details, 'Process stopped');
        else log.warn(details, 'Process stopped with a failure');
        if (allExited()) finish(exitCode);
        return;
      }
      if (state === 'starting' && !slot.listening) {
        // Most likely the same for all (configuration, database, port taken): do not loop on it.
        log.error(details, 'A process failed to start; stopping the others');
        stop('SIGTERM', code === EXIT.usage ? EXIT.usage : EXIT.failure);
        return;
      }
      if (performance.now() - slot.startedAt >= RESTART_BACKOFF.stableAfterMs)
        slot.restartDelayMs = RESTART_BACKOFF.firstMs;
      const delayMs = slot.restartDelayMs;
      slot.restartDelayMs = Math.min(delayMs * 2, RESTART_BACKOFF.maxMs);
      log.error({ ...details, restartInMs: delayMs }, 'A process exited unexpectedly; restarting it');
      slot.restartTimer = setTimeout(() => startProcess(slot), delayMs);
    };

    const startProcess = (slot: Slot) => {
      slot.restartTimer = undefined;
      slot.listening = false;
      slot.startedAt = performance.now();
      const child = fork(options.script, [...options.args], {
        execArgv: [...options.execArgv],
        env: {
          ...options.env,
          PROCESSES: '1',
          MIGRATE_ON_START: 'false',
          [SUPERVISED_PROCESS_ENV]: String(slot.index),
        },
        // Logs go to the supervisor's stdout and stderr (each JSON line carries its pid).
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        // A process group of its own: Ctrl-C in a terminal signals the supervisor alone, which
        // forwards one SIGINT (a process that got two would take the second as "exit now").
        detached: true,
      });
      slot.child = child;
      child.on('message', (message: unknown) => {
        if (isListeningMessage(message) && slot.child === child) onListening(slot, message.url);
      });
      child.on('exit', (code, signal) => onExit(slot, child, code, signal));
      child.on('error', (error) => log.error({ err: error, process: slot.index }, 'Process error'));
    };

    const killNow = (signal: NodeJS.Signals) => {
      log.warn({ signal }, 'Second signal: killing every process');
      killAll();
      finish(EXIT.failure);
    };
    stopListening = onStopSignals({
      stop(signal) {
        // Already stopping because a process failed to start: a signal now means "now".
        if (state === 'stopping') return killNow(signal);
        log.info(
          { signal, deadlineMs: config.shutdownTimeoutMs, processes: slots.length },
          'Shutting down: every process drains its in-flight requests',
        );
        stop(signal, EXIT.ok);
      },
      force: killNow,
    });
    for (const slot of slots) startProcess(slot);
  });
}
