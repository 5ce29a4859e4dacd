import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';

interface Operation {
  security?: Record<string, string[]>[];
  responses: Record<string, { content?: Record<string, unknown> }>;
  parameters?: { in: string; name: string; required?: boolean }[];
}
type Document = {
  components: { securitySchemes: Record<string, Record<string, string>>; schemas: Record<string, unknown> };
  paths: Record<string, Record<string, Operation>>;
};

describeEachDatabase('OpenAPI document: credentials of each route', (target) => {
  let socle: TestSocle;
  let document: Document;
  const operations = () =>
    Object.entries(document.paths).flatMap(([path, byMethod]) =>
      Object.entries(byMethod).map(([method, operation]) => ({
        label: `${method.toUpperCase()} ${path}`,
        path,
        method,
        operation,
      })),
    );
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: createBuiltInModules(),
      settings: { identity: { operatorToken: 'operator-token-0123456789' } },
    });
    document = (await socle.app.inject({ method: 'GET', url: '/openapi.json' })).json();
  });
  afterAll(() => socle?.dispose());

  it('declares the access token, API key, operator token and app signature schemes', () => {
    expect(document.components.securitySchemes).toMatchObject({
      accessToken: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' },
      apiKey: { type: 'apiKey', in: 'header', name: 'X-Api-Key' },
      operatorToken: { type: 'apiKey', in: 'header', name: 'X-Operator-Token' },
      appSignature: { type: 'apiKey', in: 'query', name: 'auth_signature' },
    });
  });

  it('says which credentials each route takes, and documents their 401 as problem+json', () => {
    const securityOf = (label: string) =>
      operations().find((operation) => operation.label === label)?.operation.security;
    expect(securityOf('GET /me')).toEqual([{ accessToken: [] }]);
    expect(securityOf('GET /org/members')).toEqual([{ accessToken: [] }, { apiKey: [] }]);
    expect(securityOf('POST /org/api-keys')).toEqual([{ accessToken: [] }]);
    for (const label of [
      'GET /operator/jobs',
      'GET /operator/organizations',
      'GET /operator/users',
      'POST /operator/users/{userId}/export',
      'POST /operator/users/{userId}/erase',
    ])
      expect(securityOf(label), label).toEqual([{ operatorToken: [] }]);
    expect(securityOf('POST /apps/{appId}/events')).toEqual([{ appSignature: [] }]);
    expect(securityOf('POST /auth/sign-in')).toBeUndefined();
    for (const { label, operation } of operations()) {
      if (operation.security === undefined) continue;
      expect({ label, content: Object.keys(operation.responses['401']?.content ?? {}) }).toEqual({
        label,
        content: ['application/problem+json'],
      });
    }
  });

  it('matches what the routes do: without credentials, a route answers 401 if and only if it declares some', async () => {
    for (const { label, path, method, operation } of operations()) {
      if (path.startsWith('/apps/')) continue;
      const response = await socle.app.inject({
        method: method.toUpperCase() as 'GET',
        url: path.replaceAll(/\{[^}]+\}/g, randomUUID()),
        headers: {
          'content-type': 'application/json',
          ...(operation.parameters?.some((parameter) => parameter.name === 'x-org-id')
            ? { 'x-org-id': randomUUID() }
            : {}),
        },
        payload: '{}',
      });
      if (operation.security === undefined) {
        expect({ label, code: response.json().code }).not.toEqual({ label, code: 'auth.unauthenticated' });
        continue;
      }
      // 400: a body the route validates before asking for credentials.
      expect({ label, status: [400, 401].includes(response.statusCode) }).toEqual({ label, status: true });
    }
  });

  it('lets an API key call every route that accepts one without X-Org-Id (the key names its organization)', async () => {
    const owner = await socle.newUser({
      email: `keys-${randomUUID().slice(0, 8)}@example.com`,
      password: PASSWORD,
    });
    const { key } = await socle.newApiKey(await socle.newTenant({ owner, name: 'K' }), {
      name: 'k',
      scopes: [],
      role: 'admin',
    });
    const reads = operations().filter(
      ({ method, path, operation }) =>
        method === 'get' &&
        !path.includes('{') &&
        operation.security?.some((requirement) => 'apiKey' in requirement),
    );
    expect(reads.map(({ label }) => label)).toEqual(
      expect.arrayContaining(['GET /org', 'GET /org/members', 'GET /org/audit-events', 'GET /org/jobs']),
    );
    for (const { label, path } of reads) {
      const response = await socle.app.inject({ method: 'GET', url: path, headers: { 'x-api-key': key } });
      expect({ label, status: response.statusCode }).toEqual({ label, status: 200 });
    }
  });
});
