import { chmodSync, rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import type { Logger } from '../kernel/log/index.js';
import type { JobsCommand } from './jobs-command.js';

/**
 * The socket, in DATA_DIR, on which a running embedded server answers the CLI's one-shot commands:
 * the embedded database belongs to the one process that opened it, so `socle jobs list` run beside
 * `socle start` asks that process instead of opening the database itself.
 *
 * Who may connect: the socket file is created with mode 0600, so only the user the server runs as
 * (and root), the same people who can read the data directory and its `secret-key`. Connecting
 * grants operator rights (as `OPERATOR_TOKEN` does over HTTP).
 */
export const CONTROL_SOCKET_FILE = 'cli.sock';

/** A one-shot command, checked by the CLI before it is sent. */
export type ControlCommand =
  | { readonly command: 'privacy'; readonly action: 'export' | 'erase'; readonly user: string }
  | { readonly command: 'jobs'; readonly jobs: JobsCommand }
  | { readonly command: 'migrate status' }
  | { readonly command: 'ledger check' }
  /** Writes a backup into `output`, an absolute directory path (see backup.ts). */
  | { readonly command: 'backup'; readonly output: string; readonly withoutSecretKey: boolean };

/** What the command printed and its exit code. */
export interface CommandOutput {
  readonly stdout: string;
  readonly stderr: string;
  readonly code: number;
}

/** The largest request a client may send (a command is a few hundred bytes). */
const MAX_REQUEST_BYTES = 64 * 1024;

/** Where the server of `dataDir` listens. */
export function controlSocketPath(dataDir: string): string {
  return path.join(dataDir, CONTROL_SOCKET_FILE);
}

export interface ControlSocket {
  close(): Promise<void>;
}

/**
 * Answers commands on `socketPath` with `run`, one per connection: the client writes the command as
 * one JSON line, the server answers one JSON line (`CommandOutput`) and closes. Call only while
 * holding the data directory's lock: a socket file left there by a process that died is removed.
 */
export async function openControlSocket(
  socketPath: string,
  run: (command: ControlCommand) => Promise<CommandOutput>,
  log: Logger,
): Promise<ControlSocket> {
  rmSync(socketPath, { force: true });
  const server = net.createServer((socket) => {
    let received = '';
    socket.setEncoding('utf8');
    socket.on('error', () => socket.destroy());
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.length > MAX_REQUEST_BYTES) return socket.destroy();
      const end = received.indexOf('\n');
      if (end === -1) return;
      socket.pause();
      let command: ControlCommand;
      try {
        command = JSON.parse(received.slice(0, end)) as ControlCommand;
      } catch {
        socket.end(`${JSON.stringify({ stdout: '', stderr: 'Unreadable command\n', code: 2 })}\n`);
        return;
      }
      log.info({ command: command.command }, 'CLI command from the control socket');
      void run(command).then((output) => socket.end(`${JSON.stringify(output)}\n`));
    });
  });
  // Created 0600 from the start (umask), not made private after a moment of being open.
  const umask = process.umask(0o177);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(socketPath, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(umask);
  }
  chmodSync(socketPath, 0o600);
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
      }),
  };
}

/**
 * Sends `command` to the server listening on `socketPath`; resolves to its output, or to undefined
 * when none can be reached there.
 */
export function askRunningServer(
  socketPath: string,
  command: ControlCommand,
): Promise<CommandOutput | undefined> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(socketPath);
    let answer = '';
    let connected = false;
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      connected = true;
      socket.write(`${JSON.stringify(command)}\n`);
    });
    socket.on('data', (chunk: string) => {
      answer += chunk;
    });
    socket.on('error', (error: Error) => {
      // Not connected: no server (no socket file, or one left by a process that is gone), or a
      // socket this process cannot open; then the command opens the database itself, and is told
      // plainly if a server holds it.
      if (!connected) resolve(undefined);
      else reject(error);
    });
    socket.on('end', () => {
      try {
        resolve(JSON.parse(answer) as CommandOutput);
      } catch {
        reject(new Error('The running server closed the control socket without answering'));
      }
    });
  });
}
