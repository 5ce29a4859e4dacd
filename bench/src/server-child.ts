import { writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import {
  type ChildMessage,
  isParentMessage,
  type RequestHeaders,
  SERVER_SETTINGS_ENV,
  type ServerSettings,
} from './server-protocol.js';

/** A server started by a child entry point. */
export interface StartedServer {
  /** Base URL it listens on (127.0.0.1, a free port). */
  readonly url: string;
  /**
   * Headers the harness must send with every request to this server (probe and load), e.g.
   * `Authorization` with an access token the server made for itself at start.
   */
  readonly requestHeaders?: RequestHeaders;
  close(): Promise<void>;
}

function readSettings(env: NodeJS.ProcessEnv): ServerSettings {
  const raw = env[SERVER_SETTINGS_ENV];
  if (raw === undefined) {
    throw new Error(
      `${SERVER_SETTINGS_ENV} is not set: server entry points are started by the bench harness`,
    );
  }
  return JSON.parse(raw) as ServerSettings;
}

function send(message: ChildMessage): void {
  process.send?.(message);
}

/**
 * The body of every server child: starts the server, reports its URL to the harness, profiles on
 * request, and stops cleanly on SIGTERM/SIGINT or when the harness goes away (IPC disconnect),
 * so a crashed harness never leaves a server behind.
 */
export function runServerChild(start: (settings: ServerSettings) => Promise<StartedServer>): void {
  let server: StartedServer | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    try {
      await server?.close();
    } catch (error) {
      console.error('Server did not close cleanly:', error);
    }
    process.exit(code);
  };
  process.once('SIGTERM', () => void stop(0));
  process.once('SIGINT', () => void stop(0));
  process.once('disconnect', () => void stop(0));

  let session: Session | undefined;
  process.on('message', (message: unknown) => {
    if (!isParentMessage(message)) return;
    if (message.type === 'start-profile') {
      session = new Session();
      session.connect();
      void session.post('Profiler.enable').then(() => session?.post('Profiler.start'));
      return;
    }
    const current = session;
    session = undefined;
    void (async () => {
      if (current === undefined) return;
      const { profile } = await current.post('Profiler.stop');
      current.disconnect();
      await writeFile(message.path, JSON.stringify(profile));
      send({ type: 'profile-written', path: message.path });
    })();
  });

  start(readSettings(process.env)).then(
    (started) => {
      server = started;
      console.log(`listening on ${started.url}`);
      send({
        type: 'ready',
        url: started.url,
        ...(started.requestHeaders === undefined ? {} : { requestHeaders: started.requestHeaders }),
      });
    },
    (error: unknown) => {
      console.error('Server failed to start:', error);
      void stop(1);
    },
  );
}
