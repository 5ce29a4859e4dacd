import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * One misbehaviour of a {@link FaultyProvider}: an error status (with `Retry-After`), a reset
 * connection, a request left unanswered, or an answer delayed by `delayMs`.
 */
export type ProviderFault =
  | { readonly status: number; readonly retryAfter?: string; readonly body?: string }
  /** Resets the connection; `afterHandling`: after the provider acted on the request (a lost answer). */
  | { readonly reset: true; readonly afterHandling?: boolean }
  | { readonly hang: true }
  | { readonly delayMs: number };

/** One request the fake received. */
export interface ReceivedRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

/** What the fake answers when no fault is queued. */
export type ProviderHandler = (request: ReceivedRequest) =>
  | {
      readonly status?: number;
      readonly json?: unknown;
      readonly body?: string;
      readonly headers?: Record<string, string>;
      /** Acted on, then the connection is reset: the caller never sees the answer. */
      readonly reset?: boolean;
    }
  | undefined;

/** A local HTTP server standing in for a third-party API, with faults injected on demand. */
export interface FaultyProvider {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** Every request received, in order (faulty ones included). */
  readonly requests: ReceivedRequest[];
  /** The next `count` requests get `fault` (queued after faults already queued). */
  failNext(count: number, fault: ProviderFault): void;
  /** Every request gets `fault` until `recover()`: a provider that is down. */
  failAll(fault: ProviderFault): void;
  /** Ends `failAll` and drops queued faults. */
  recover(): void;
  /** Answers requests with `handler` when no fault applies (default: 200 `{ "ok": true }`). */
  answer(handler: ProviderHandler): void;
  close(): Promise<void>;
}

/**
 * Starts a fake provider on a loopback port. Tests point a declared provider's `baseUrl` (or an
 * official SDK's base URL) at `url` and script failures with `failNext` / `failAll`.
 *
 * @example
 * const fake = await startFaultyProvider();
 * fake.failNext(2, { status: 503, retryAfter: '1' });
 * const zoom = defineProvider('zoom', { baseUrl: fake.url });
 */
export async function startFaultyProvider(
  options: {
    /**
     * Reads a request's body instead of buffering it (a fake receiving 200 MB uploads): what it
     * returns is the request's `body`; a failure answers 400.
     */
    readBody?: (incoming: IncomingMessage) => Promise<string>;
    /** The loopback port to listen on (a demo's fixed address); any free port by default. */
    port?: number;
  } = {},
): Promise<FaultyProvider> {
  const requests: ReceivedRequest[] = [];
  const queued: ProviderFault[] = [];
  let always: ProviderFault | undefined;
  let handler: ProviderHandler = () => undefined;
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();
  /** Answers held back by `delayMs`: cleared on close, so a long delay outlives no test. */
  const delayed = new Set<NodeJS.Timeout>();

  const readBody =
    options.readBody ??
    (async (incoming: IncomingMessage) => {
      const chunks: Buffer[] = [];
      for await (const chunk of incoming) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    });

  const server: Server = createServer((incoming, response) => {
    readBody(incoming).then(
      (body) => respond(incoming, response, body),
      () => {
        if (response.headersSent || response.destroyed) return;
        response.writeHead(400, { 'content-type': 'application/json', connection: 'close' });
        response.end(JSON.stringify({ error: 'unreadable body' }));
      },
    );
  });
  const respond = (incoming: IncomingMessage, response: ServerResponse, body: string) => {
    const request = {
      method: incoming.method ?? 'GET',
      url: incoming.url ?? '/',
      headers: incoming.headers,
      body,
    };
    requests.push(request);
    const fault = queued.shift() ?? always;
    const send = () => {
      const answer = handler(request) ?? { json: { ok: true } };
      if (answer.reset === true) return incoming.socket.resetAndDestroy();
      const body = answer.json === undefined ? (answer.body ?? '') : JSON.stringify(answer.json);
      response.writeHead(answer.status ?? 200, {
        ...(answer.json === undefined ? {} : { 'content-type': 'application/json' }),
        ...answer.headers,
      });
      response.end(body);
    };
    if (fault === undefined) return send();
    if ('reset' in fault) {
      if (fault.afterHandling === true) handler(request);
      return incoming.socket.resetAndDestroy();
    }
    if ('hang' in fault) {
      hanging.add(response);
      return;
    }
    if ('delayMs' in fault) {
      const timer = setTimeout(() => {
        delayed.delete(timer);
        if (!response.destroyed) send();
      }, fault.delayMs);
      delayed.add(timer);
      return;
    }
    response.writeHead(fault.status, {
      'content-type': 'application/json',
      ...(fault.retryAfter === undefined ? {} : { 'retry-after': fault.retryAfter }),
    });
    response.end(fault.body ?? JSON.stringify({ error: `injected ${fault.status}` }));
  };
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject); // a fixed port already taken
    server.listen(options.port ?? 0, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    failNext(count, fault) {
      for (let index = 0; index < count; index++) queued.push(fault);
    },
    failAll(fault) {
      always = fault;
    },
    recover() {
      always = undefined;
      queued.length = 0;
    },
    answer(next) {
      handler = next;
    },
    async close() {
      for (const timer of delayed) clearTimeout(timer);
      for (const response of hanging) response.destroy();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
