import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { pinProcess } from '../../cpu-affinity.js';
import { processCpuSeconds } from '../../process-cpu.js';
import {
  SUBSCRIBER_SETTINGS_ENV,
  type SubscriberCommand,
  type SubscriberReport,
  type WireProtocol,
} from './subscriber-protocol.js';

const OPEN_TIMEOUT_MS = 180_000;
const ENTRY = new URL('./subscriber-child.js', import.meta.url);

interface Child {
  readonly process: ChildProcess;
  readonly sockets: number;
}

/** Subscriber processes holding `sockets` sockets in all, each joined to the benchmark channel. */
export interface SubscriberGroup {
  readonly sockets: number;
  readonly processes: number;
  /** Handshakes tried again because the server refused or dropped them while the sockets opened. */
  readonly handshakeRetries: number;
  /** Sends a command to every subscriber process. */
  broadcast(command: SubscriberCommand): void;
  /**
   * Resolves with one report of `type` from each process (those `accept` lets through), or
   * rejects after `timeoutMs`.
   */
  collect<T extends SubscriberReport['type']>(
    type: T,
    timeoutMs: number,
    accept?: (report: Extract<SubscriberReport, { type: T }>) => boolean,
  ): Promise<Extract<SubscriberReport, { type: T }>[]>;
  /** Expected throughput-phase deliveries per process when `messages` were published. */
  drain(messages: number, timeoutMs: number): Promise<{ deliveries: number; lastAtNs: number }>;
  /** CPU seconds the subscriber processes used so far. */
  cpuSeconds(): Promise<number>;
  close(): Promise<void>;
}

/**
 * Starts subscriber processes for `sockets` sockets, at most `perProcess` each (a process's own
 * open-files limit caps it), the n-th process connecting from 127.0.0.(n + 2) so each has its own
 * ephemeral ports; pins them to `cores` when given.
 */
export async function openSubscribers(options: {
  url: string;
  protocol: WireProtocol;
  sockets: number;
  perProcess: number;
  cores: string | undefined;
  signal: AbortSignal;
}): Promise<SubscriberGroup> {
  const count = Math.ceil(options.sockets / options.perProcess);
  const children: Child[] = [];
  for (let index = 0; index < count; index++) {
    const sockets = Math.floor(options.sockets / count) + (index < options.sockets % count ? 1 : 0);
    const child = spawn(process.execPath, [fileURLToPath(ENTRY)], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      env: {
        ...process.env,
        [SUBSCRIBER_SETTINGS_ENV]: JSON.stringify({
          url: options.url,
          protocol: options.protocol,
          sockets,
          localAddress: `127.0.0.${index + 2}`,
        }),
      },
    });
    children.push({ process: child, sockets });
    if (options.cores !== undefined && child.pid !== undefined) await pinProcess(child.pid, options.cores);
  }

  const collect: SubscriberGroup['collect'] = (type, timeoutMs, accept) =>
    new Promise((resolve, reject) => {
      const reports: Extract<SubscriberReport, { type: typeof type }>[] = [];
      const listeners = children.map((child) => {
        const onMessage = (report: SubscriberReport) => {
          if (report.type === 'failed') return finish(new Error(`subscriber failed: ${report.error}`));
          if (report.type !== type) return;
          const typed = report as Extract<SubscriberReport, { type: typeof type }>;
          if (accept !== undefined && !accept(typed)) return;
          reports.push(typed);
          child.process.off('message', onMessage);
          if (reports.length === children.length) finish();
        };
        const onExit = (code: number | null) =>
          finish(new Error(`a subscriber process exited (${code}) while waiting for "${type}"`));
        child.process.on('message', onMessage);
        child.process.once('exit', onExit);
        return { child, onMessage, onExit };
      });
      const onAbort = () => finish(new Error('interrupted'));
      options.signal.addEventListener('abort', onAbort, { once: true });
      const timer = setTimeout(
        () => finish(new Error(`no "${type}" from every subscriber process within ${timeoutMs} ms`)),
        timeoutMs,
      );
      function finish(error?: Error) {
        clearTimeout(timer);
        options.signal.removeEventListener('abort', onAbort);
        for (const { child, onMessage, onExit } of listeners) {
          child.process.off('message', onMessage);
          child.process.off('exit', onExit);
        }
        if (error === undefined) resolve(reports);
        else reject(error);
      }
    });

  const group: Omit<SubscriberGroup, 'handshakeRetries'> = {
    sockets: options.sockets,
    processes: count,
    broadcast(command) {
      for (const child of children) child.process.send(command);
    },
    collect,
    async drain(messages, timeoutMs) {
      const reports = children.map(
        (child) =>
          new Promise<{ deliveries: number; lastAtNs: number }>((resolve, reject) => {
            const onMessage = (report: SubscriberReport) => {
              if (report.type !== 'drained') return;
              child.process.off('message', onMessage);
              child.process.off('exit', onExit);
              resolve(report);
            };
            const onExit = () => reject(new Error('a subscriber process exited while draining'));
            child.process.on('message', onMessage);
            child.process.once('exit', onExit);
            child.process.send({
              type: 'drain',
              expected: messages * child.sockets,
              timeoutMs,
            } satisfies SubscriberCommand);
          }),
      );
      const drained = await Promise.all(reports);
      return {
        deliveries: drained.reduce((sum, report) => sum + report.deliveries, 0),
        lastAtNs: Math.max(...drained.map((report) => report.lastAtNs)),
      };
    },
    async cpuSeconds() {
      const each = await Promise.all(children.map((child) => processCpuSeconds(child.process.pid ?? -1)));
      return each.reduce<number>((sum, seconds) => sum + (seconds ?? 0), 0);
    },
    async close() {
      await Promise.all(
        children.map(async (child) => {
          if (child.process.exitCode !== null || child.process.signalCode !== null) return;
          const exited = once(child.process, 'exit');
          child.process.kill('SIGKILL');
          await exited;
        }),
      );
    },
  };
  try {
    const ready = await collect('ready', OPEN_TIMEOUT_MS);
    return { ...group, handshakeRetries: ready.reduce((sum, report) => sum + report.retries, 0) };
  } catch (error) {
    await group.close();
    throw error;
  }
}
