import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { databaseTargets } from './support/each-database.js';
import { sendRaw } from './support/http-request.js';

// Requests Node's HTTP server answers itself, before the parser errors Fastify sees: they must be
// problem+json with a request id too (issue 11 item 2). Not database work: the embedded one is quick.
const pglite = databaseTargets.find((target) => target.dialect === 'pglite');
if (pglite === undefined) throw new Error('No PGlite test target');

function parse(answer: string) {
  const [head = '', body = ''] = answer.split('\r\n\r\n', 2);
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body };
}

describe('HTTP requests Node answers by itself [pglite]', () => {
  let socle: TestSocle;
  let port: number;
  beforeAll(async () => {
    socle = await createTestSocle(pglite, { modules: [] });
    port = Number(new URL(await socle.listen()).port);
  });
  afterAll(() => socle?.dispose());

  it.each([
    [
      'an HTTP/1.1 request without Host',
      'GET /livez HTTP/1.1\r\nConnection: close\r\n\r\n',
      400,
      'http.malformed_request',
    ],
    [
      'an Expect the server does not meet',
      'POST /livez HTTP/1.1\r\nHost: x\r\nExpect: 200-ok\r\nContent-Length: 0\r\nConnection: close\r\n\r\n',
      417,
      'http.expectation_failed',
    ],
  ])('answers %s with problem+json and a request id', async (_label, request, status, code) => {
    const answer = parse(await sendRaw(`http://127.0.0.1:${port}`, request));
    expect(answer.status).toBe(status);
    expect(answer.headers['content-type']).toMatch(/^application\/problem\+json/);
    expect(answer.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(JSON.parse(answer.body)).toMatchObject({ status, code });
  });
});
