import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createIdentityModule,
  createMailModule,
  createRealtimeModule,
  createTenancyModule,
} from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { databaseTargets } from './support/each-database.js';
import { RawPusherSocket, testRealtimeApp } from './support/realtime-clients.js';

// Connection handling does not depend on the database: the embedded one keeps this quick.
const pglite = databaseTargets.find((target) => target.dialect === 'pglite');
if (pglite === undefined) throw new Error('No PGlite test target');

/** Longer than every timeout configured below: a connection still open then was never timed out. */
const BOUND_MS = 10_000;

interface RawConnection {
  readonly socket: net.Socket;
  /** Everything the server sent, once it closed the connection; 'open' if it had not within BOUND_MS. */
  readonly closed: Promise<string | 'open'>;
}

/** A TCP connection that sends exactly `data` and then nothing, from `localAddress`. */
async function rawConnection(port: number, data: string, localAddress = '127.0.0.1'): Promise<RawConnection> {
  const socket = net.connect({ host: '127.0.0.1', port, localAddress });
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  let received = '';
  socket.on('data', (chunk) => {
    received += chunk.toString('latin1');
  });
  socket.on('error', () => undefined);
  const closed = Promise.race([
    new Promise<string>((resolve) => socket.once('close', () => resolve(received))),
    sleep(BOUND_MS).then(() => 'open' as const),
  ]);
  if (data !== '') socket.write(data);
  return { socket, closed };
}

/** A whole GET over a new connection from `localAddress`: the status, or the socket error's code. */
async function getStatus(port: number, path: string, localAddress = '127.0.0.1'): Promise<number | string> {
  const connection = await rawConnection(
    port,
    `GET ${path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`,
    localAddress,
  ).catch((error: NodeJS.ErrnoException) => error.code ?? 'error');
  if (typeof connection === 'string') return connection;
  const received = await connection.closed;
  const status = /^HTTP\/1\.1 (\d{3})/.exec(received);
  return status === null ? 'closed without an answer' : Number(status[1]);
}

const SLOW_BODY_HEADERS =
  'POST /anything HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n';

describe('slow and greedy clients (real sockets)', () => {
  let socle: TestSocle;
  let port: number;
  let baseUrl: string;
  const app = testRealtimeApp();

  beforeAll(async () => {
    socle = await createTestSocle(pglite, {
      modules: [
        createIdentityModule({ rateLimits: false }),
        createMailModule(),
        createTenancyModule(),
        createRealtimeModule(),
      ],
      settings: { realtime: app },
      config: {
        httpRequestTimeoutMs: 1000,
        httpHeadersTimeoutMs: 500,
        httpKeepAliveTimeoutMs: 500,
        httpMaxConnectionsPerIp: 5,
      },
    });
    baseUrl = await socle.listen();
    port = Number(new URL(baseUrl).port);
  });
  afterAll(() => socle?.dispose());

  it('closes a connection whose body stops short of its Content-Length, with 408', async () => {
    const connection = await rawConnection(port, `${SLOW_BODY_HEADERS}{"ten":"12"`);
    const received = await connection.closed;
    expect(received, 'the connection was still open after 10 s').not.toBe('open');
    expect(received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('closes a connection that never finishes its headers, and one that sends nothing', async () => {
    const partial = await rawConnection(port, 'GET /livez HTTP/1.1\r\nHost: localhost\r\n');
    const silent = await rawConnection(port, '');
    const [partialReceived, silentReceived] = await Promise.all([partial.closed, silent.closed]);
    expect(partialReceived, 'partial headers kept the connection open').not.toBe('open');
    expect(silentReceived, 'a silent connection stayed open').not.toBe('open');
  });

  it('closes an idle keep-alive connection after its timeout', async () => {
    const connection = await rawConnection(port, 'GET /livez HTTP/1.1\r\nHost: localhost\r\n\r\n');
    const received = await connection.closed;
    expect(received, 'the idle keep-alive connection stayed open').not.toBe('open');
    expect(received).toMatch(/^HTTP\/1\.1 200 /);
  });

  it('keeps a WebSocket open past the request and keep-alive timeouts (they bound HTTP only)', async () => {
    const client = new RawPusherSocket(baseUrl, app.appKey);
    await client.next('pusher:connection_established');
    const closedEarly = await Promise.race([client.closed, sleep(2500).then(() => undefined)]);
    expect(closedEarly, 'the WebSocket was closed by an HTTP timeout').toBeUndefined();
    client.socket.close();
    await client.closed;
  });

  it('caps the connections of one address, counts the refused ones, and keeps serving other addresses', async () => {
    const held = await Promise.all(Array.from({ length: 5 }, () => rawConnection(port, SLOW_BODY_HEADERS)));
    try {
      const over = await rawConnection(port, '');
      expect(await over.closed, 'a sixth connection of one address was kept').toBe('');
      expect(await getStatus(port, '/livez', '127.0.0.2')).toBe(200);
    } finally {
      for (const connection of held) connection.socket.destroy();
    }
    // Closed connections no longer count against the address.
    let status = await getStatus(port, '/livez');
    for (let attempt = 0; status !== 200 && attempt < 50; attempt++) {
      await sleep(20);
      status = await getStatus(port, '/livez');
    }
    expect(status).toBe(200);
    const metrics = await socle.app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.body).toMatch(
      /^socle_http_connections_refused_total\{reason="per_address_limit"\} [1-9]/m,
    );
  });
});

describe('the connection cap behind a trusted proxy', () => {
  it('is not applied: every connection comes from the proxy address', async () => {
    const socle = await createTestSocle(pglite, {
      config: { trustProxy: true, httpMaxConnectionsPerIp: 1, httpRequestTimeoutMs: 2000 },
    });
    try {
      const port = Number(new URL(await socle.listen()).port);
      const held = await rawConnection(port, SLOW_BODY_HEADERS);
      try {
        expect(await getStatus(port, '/livez')).toBe(200);
      } finally {
        held.socket.destroy();
      }
    } finally {
      await socle.dispose();
    }
  });
});
