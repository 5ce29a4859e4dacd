import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';
import { sendRaw } from './support/http-request.js';

const PASSWORD = 'correct horse battery staple orbit';
const PROBLEM = 'application/problem+json; charset=utf-8';

function parseResponse(text: string) {
  const [head = '', body = ''] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers = Object.fromEntries(
    lines.map((line) => [
      line.slice(0, line.indexOf(':')).toLowerCase(),
      line.slice(line.indexOf(':') + 1).trim(),
    ]),
  );
  return { status: Number(statusLine.split(' ')[1]), headers, body: JSON.parse(body) };
}

describeEachDatabase('Bad input gets a 4xx problem+json, never a 5xx', (target) => {
  let socle: TestSocle;
  let url: string;
  let user: Record<string, string>;
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: createBuiltInModules() });
    url = await socle.listen();
    const owner = await socle.newUser({
      email: `bad-input-${randomUUID().slice(0, 8)}@example.com`,
      password: PASSWORD,
    });
    const tenant = await socle.newTenant({ owner, name: 'A' });
    user = { authorization: `Bearer ${owner.token}`, 'x-org-id': tenant.id };
  });
  afterAll(() => socle?.dispose());

  describe('values no store can hold, refused by the validation of every route', () => {
    const cases = () => [
      {
        name: 'NUL in the name of a sign-up (no credentials needed)',
        request: {
          method: 'POST' as const,
          url: '/auth/sign-up',
          payload: { email: 'nul@example.com', password: PASSWORD, name: 'a\u0000b' },
        },
        field: 'body/name',
      },
      {
        name: 'NUL in ?action= of the audit log',
        request: { method: 'GET' as const, url: '/org/audit-events?action=a%00b', headers: user },
        field: 'query/action',
      },
      {
        name: 'NUL in the app id of the Pusher HTTP API (looked up before the signature)',
        request: {
          method: 'POST' as const,
          url: '/apps/%00/events?auth_key=k&auth_timestamp=1&auth_signature=s',
          payload: { name: 'e', data: '{}', channel: 'c' },
        },
        field: 'path/appId',
      },
      {
        name: 'a limit that parses to Infinity',
        request: { method: 'GET' as const, url: '/org/audit-events?limit=1e309', headers: user },
        field: 'query/limit',
      },
      {
        name: 'a number literal that parses to Infinity in a JSON body',
        request: {
          method: 'POST' as const,
          url: '/orgs',
          headers: { ...user, 'content-type': 'application/json' },
          payload: '{"name": "x", "slug": 1e400}',
        },
        field: 'body/slug',
      },
      {
        name: 'a lone surrogate in an organization name',
        request: {
          method: 'POST' as const,
          url: '/orgs',
          headers: { ...user, 'content-type': 'application/json' },
          payload: '{"name": "a\\ud800"}',
        },
        field: 'body/name',
      },
    ];
    it('answers 400 http.validation_failed naming the field', async () => {
      for (const { name, request, field } of cases()) {
        const response = await socle.app.inject(request);
        expect({ name, status: response.statusCode }).toEqual({ name, status: 400 });
        expect(response.headers['content-type']).toBe(PROBLEM);
        expect(response.json().code).toBe('http.validation_failed');
        expect(response.json().errors.map((error: { field: string }) => error.field)).toContain(field);
      }
    });

    it('refuses a date-time Postgres cannot hold (year 0000)', async () => {
      const response = await socle.app.inject({
        method: 'GET',
        url: '/org/audit-events?since=0000-01-01T00:00:00Z',
        headers: user,
      });
      expect(response.statusCode).toBe(400);
      expect(response.json().errors).toEqual([
        { field: 'query/since', message: 'must match format "date-time"' },
      ]);
    });
  });

  describe("Fastify's own refusals", () => {
    it('answers a path that is not UTF-8 with a 400 problem+json and a request id', async () => {
      const response = await socle.app.inject({ method: 'GET', url: '/org/%FF%FE' });
      expect(response.statusCode).toBe(400);
      expect(response.headers['content-type']).toBe(PROBLEM);
      expect(response.headers['x-request-id']).toEqual(expect.any(String));
      expect(response.json()).toMatchObject({
        code: 'http.bad_url',
        requestId: response.headers['x-request-id'],
      });
    });

    it('answers a path parameter over 100 characters with a 414 problem+json', async () => {
      const response = await socle.app.inject({ method: 'GET', url: `/org/jobs/${'x'.repeat(101)}` });
      expect(response.statusCode).toBe(414);
      expect(response.headers['content-type']).toBe(PROBLEM);
      expect(response.headers['x-request-id']).toEqual(expect.any(String));
      expect(response.json()).toMatchObject({ code: 'http.path_segment_too_long', maxLength: 100 });
    });

    it('never echoes the query string (it may carry a signature) in instance', async () => {
      const response = await socle.app.inject({
        method: 'GET',
        url: '/apps/x/channels?auth_key=k&auth_timestamp=1&auth_signature=secret-signature',
      });
      expect(response.statusCode).toBe(404);
      expect(response.json().instance).toBe('/apps/x/channels');
      expect(response.body).not.toContain('secret-signature');
    });
  });

  describe("requests Node's HTTP parser refuses, on real sockets", () => {
    const malformed = [
      ['a NUL byte in a header', 'GET /livez HTTP/1.1\r\nHost: x\r\nX-A: a\u0000b\r\n\r\n', 400],
      [
        'Content-Length with Transfer-Encoding',
        'POST /auth/sign-in HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n',
        400,
      ],
      ['an HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 400],
      [
        'headers over the size limit',
        `GET /livez HTTP/1.1\r\nHost: x\r\nX-A: ${'a'.repeat(20_000)}\r\n\r\n`,
        431,
      ],
      [
        'a raw 0xFF byte in the path',
        Buffer.from('GET /org/\xff HTTP/1.1\r\nHost: x\r\n\r\n', 'latin1'),
        400,
      ],
    ] as const;
    for (const [name, request, status] of malformed) {
      it(`answers ${name} with a ${status} problem+json carrying a request id`, async () => {
        const response = parseResponse(await sendRaw(url, request));
        expect(response.status).toBe(status);
        expect(response.headers['content-type']).toBe(PROBLEM);
        expect(response.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
        expect(response.body).toMatchObject({ status, requestId: response.headers['x-request-id'] });
        expect(response.body.code).toMatch(/^http\./);
        if (name === 'an HTTP/2 preface') expect(response.body.detail).toContain('use HTTP/1.1');
      });
    }
  });
});
