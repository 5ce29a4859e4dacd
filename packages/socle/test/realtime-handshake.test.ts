import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { databaseTargets } from './support/each-database.js';
import { sendRaw } from './support/http-request.js';
import { testRealtimeApp } from './support/realtime-clients.js';

// Upgrade requests go to the realtime gateway, not to Fastify: its refusals must be problem+json
// with a request id like every other (issue 11 item 2). Not database work: the embedded one is quick.
const pglite = databaseTargets.find((target) => target.dialect === 'pglite');
if (pglite === undefined) throw new Error('No PGlite test target');

describe('Refused WebSocket handshakes [pglite]', () => {
  const app = testRealtimeApp('-handshake');
  let socle: TestSocle;
  let port: number;
  beforeAll(async () => {
    socle = await createTestSocle(pglite, { modules: createBuiltInModules(), settings: { realtime: app } });
    port = Number(new URL(await socle.listen()).port);
  });
  afterAll(() => socle?.dispose());

  const upgrade = (path: string, headers: string) =>
    `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\n${headers}\r\n`;
  it.each([
    ['without Sec-WebSocket-Key', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n'],
    [
      'with an unknown version',
      'Upgrade: websocket\r\nSec-WebSocket-Version: 99\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n',
    ],
    ['with a malformed key', 'Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: x\r\n'],
    ['to another protocol (h2c)', 'Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\n'],
  ])('answers an upgrade %s with a 400 problem+json and a request id', async (_label, headers) => {
    const answer = await sendRaw(
      `http://127.0.0.1:${port}`,
      upgrade(`/app/${app.appKey}?protocol=7`, headers),
    );
    const [head = '', body = ''] = answer.split('\r\n\r\n', 2);
    expect(head).toMatch(/^HTTP\/1\.1 400 /);
    expect(head).toMatch(/\r\ncontent-type: application\/problem\+json/i);
    expect(head).toMatch(/\r\nx-request-id: [0-9a-f-]{36}/i);
    expect(JSON.parse(body)).toMatchObject({ status: 400, code: 'realtime.invalid_handshake' });
  });
});
