import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineModule, SocleError, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const things = defineModule({
  name: 'things',
  routes(app) {
    app.post(
      '/things',
      {
        schema: {
          body: Type.Object(
            {
              name: Type.String({ minLength: 1 }),
              email: Type.String({ format: 'email' }),
              count: Type.Optional(Type.Integer({ minimum: 0 })),
            },
            { additionalProperties: false },
          ),
          response: { 201: Type.Object({ name: Type.String(), count: Type.Integer() }) },
        },
      },
      async (request, reply) =>
        reply.code(201).send({ name: request.body.name, count: request.body.count ?? 0 }),
    );
    app.get(
      '/things/:id',
      {
        schema: {
          params: Type.Object({ id: Type.Integer() }),
          querystring: Type.Object({ limit: Type.Integer({ maximum: 100, default: 10 }) }),
        },
      },
      async (request) => ({ id: request.params.id, limit: request.query.limit }),
    );
    app.get('/boom', async () => {
      throw new Error('connection to 10.0.0.7 refused: password authentication failed for user "admin"');
    });
    app.get('/busy', async () => {
      throw new SocleError('things.busy', 'Too many things at once', {
        status: 429,
        headers: { 'retry-after': '7' },
        details: { retryAfterSeconds: 7 },
      });
    });
  },
});

describeEachDatabase('HTTP errors and requests', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [things],
      config: { bodyLimitBytes: 2048, corsOrigins: ['https://app.example'] },
    });
  });
  afterAll(() => socle?.dispose());

  it('answers an unknown route with a 404 problem+json', async () => {
    const response = await socle.app.inject({ method: 'GET', url: '/nowhere?x=1' });
    expect(response.statusCode).toBe(404);
    expect(response.headers['content-type']).toBe('application/problem+json; charset=utf-8');
    expect(response.json()).toMatchObject({
      type: 'urn:socle:problem:http.route_not_found',
      title: 'Not Found',
      status: 404,
      code: 'http.route_not_found',
      detail: 'No route matches GET /nowhere',
    });
  });

  it('answers malformed JSON with a 400 naming the problem', async () => {
    const response = await socle.app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/json' },
      payload: '{"name": "a",',
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ code: 'http.malformed_json', status: 400 });
  });

  it('answers an empty JSON body with a 400', async () => {
    const response = await socle.app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(400);
    expect(response.json().code).toBe('http.empty_json_body');
  });

  it('names every invalid field at once', async () => {
    const response = await socle.app.inject({
      method: 'POST',
      url: '/things',
      payload: { email: 'not-an-email', count: -1, extra: true },
    });
    expect(response.statusCode).toBe(400);
    const problem = response.json();
    expect(problem.code).toBe('http.validation_failed');
    expect(problem.errors).toEqual(
      expect.arrayContaining([
        { field: 'body/name', message: 'is required' },
        { field: 'body/email', message: 'must match format "email"' },
        { field: 'body/count', message: 'must be >= 0' },
        { field: 'body/extra', message: 'is not allowed' },
      ]),
    );
  });

  it('validates path and query parameters and applies defaults', async () => {
    const bad = await socle.app.inject({ method: 'GET', url: '/things/abc?limit=500' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().errors).toEqual(
      expect.arrayContaining([{ field: 'path/id', message: 'must be integer' }]),
    );
    const good = await socle.app.inject({ method: 'GET', url: '/things/42' });
    expect(good.json()).toEqual({ id: 42, limit: 10 });
    const tooMany = await socle.app.inject({ method: 'GET', url: '/things/42?limit=500' });
    expect(tooMany.json().errors).toEqual([{ field: 'query/limit', message: 'must be <= 100' }]);
  });

  it('refuses a body over the limit with 413', async () => {
    const response = await socle.app.inject({
      method: 'POST',
      url: '/things',
      payload: { name: 'x'.repeat(4096), email: 'a@b.example' },
    });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ code: 'http.payload_too_large', limitBytes: 2048 });
  });

  it('refuses an unsupported content type with 415', async () => {
    const response = await socle.app.inject({
      method: 'POST',
      url: '/things',
      headers: { 'content-type': 'application/xml' },
      payload: '<thing/>',
    });
    expect(response.statusCode).toBe(415);
    expect(response.json().code).toBe('http.unsupported_media_type');
  });

  it('hides the internals of an unexpected error and gives the request id', async () => {
    const response = await socle.app.inject({ method: 'GET', url: '/boom' });
    expect(response.statusCode).toBe(500);
    const problem = response.json();
    expect(problem.code).toBe('internal.unexpected');
    expect(response.body).not.toContain('10.0.0.7');
    expect(response.body).not.toContain('password');
    expect(problem.requestId).toBe(response.headers['x-request-id']);
    expect(problem.detail).toContain(problem.requestId);
  });

  it('renders a SocleError with its status, code, details and headers', async () => {
    const response = await socle.app.inject({ method: 'GET', url: '/busy' });
    expect(response.statusCode).toBe(429);
    expect(response.headers['retry-after']).toBe('7');
    expect(response.json()).toMatchObject({
      code: 'things.busy',
      title: 'Too Many Requests',
      retryAfterSeconds: 7,
    });
  });

  it('keeps a safe incoming request id and replaces an unsafe one', async () => {
    const kept = await socle.app.inject({
      method: 'GET',
      url: '/livez',
      headers: { 'x-request-id': 'edge-42.abc' },
    });
    expect(kept.headers['x-request-id']).toBe('edge-42.abc');
    const replaced = await socle.app.inject({
      method: 'GET',
      url: '/livez',
      headers: { 'x-request-id': 'bad id\n{"level":60}' },
    });
    expect(replaced.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('answers CORS preflights for configured origins only', async () => {
    const allowed = await socle.app.inject({
      method: 'OPTIONS',
      url: '/things',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(allowed.statusCode).toBe(204);
    expect(allowed.headers['access-control-allow-origin']).toBe('https://app.example');
    const other = await socle.app.inject({
      method: 'OPTIONS',
      url: '/things',
      headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' },
    });
    expect(other.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('publishes module routes in the OpenAPI 3.1 document and serves the docs UI', async () => {
    const document = (await socle.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(document.openapi).toBe('3.1.0');
    expect(Object.keys(document.paths)).toEqual(
      expect.arrayContaining(['/things', '/things/{id}', '/livez', '/readyz']),
    );
    expect(document.paths['/things'].post.requestBody.content['application/json'].schema.required).toEqual([
      'name',
      'email',
    ]);
    const docs = await socle.app.inject({ method: 'GET', url: '/docs/' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['content-type']).toContain('text/html');
  });
});
