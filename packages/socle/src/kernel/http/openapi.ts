/// <reference types="@fastify/swagger" preserve="true" />
// Route schemas take OpenAPI's `tags`, `summary`, `security` (the augmentation of @fastify/swagger):
// kept in the declarations so apps' routes type-check with them as built-in modules' do.
/**
 * How a request proves who it is, as OpenAPI security schemes: `/openapi.json` declares them, and
 * `/docs` (Swagger UI) offers an "Authorize" button for each, so it can call authenticated routes.
 */
export const SECURITY_SCHEMES = {
  accessToken: {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description:
      'A signed-in user: `Authorization: Bearer <accessToken>` from POST /auth/sign-in, /auth/sign-up or /auth/refresh. Routes under /org also need `X-Org-Id`.',
  },
  apiKey: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Api-Key',
    description:
      "An API key of an organization (`sk_…`, from POST /org/api-keys): acts in the key's organization with its role; `X-Org-Id` may be omitted.",
  },
  operatorToken: {
    type: 'apiKey',
    in: 'header',
    name: 'X-Operator-Token',
    description: 'The OPERATOR_TOKEN setting of this server (operator routes answer 404 without it).',
  },
  // Pusher's HTTP API (realtime module): the query carries auth_key, auth_timestamp and an HMAC of
  // the request made with the app secret.
  appSignature: {
    type: 'apiKey',
    in: 'query',
    name: 'auth_signature',
    description:
      "Pusher's request signature (auth_key, auth_timestamp, auth_signature), made by the server SDKs.",
  },
} as const;

type SecurityRequirement = Readonly<Partial<Record<keyof typeof SECURITY_SCHEMES, readonly string[]>>>;

/**
 * The `security` of a route's schema, for the credentials the route accepts (any one of them).
 * Routes without it are public. Declaring it documents the credentials and the 401 answer; the
 * checks themselves are `requireUser`, `requireOrg`/`requireOrgRole` and the route's own.
 *
 * @example
 * app.get('/crm/clients', { schema: { security: routeSecurity.memberOrApiKey, headers: orgHeaders } }, …);
 */
export const routeSecurity = {
  /** A signed-in user (`requireUser`). */
  user: [{ accessToken: [] }],
  /** A member of the organization (`X-Org-Id`) or an API key of it (`requireOrg`, `requireOrgRole`). */
  memberOrApiKey: [{ accessToken: [] }, { apiKey: [] }],
  /** The operator token. */
  operator: [{ operatorToken: [] }],
  /** A Pusher HTTP API signature made with a realtime app's secret. */
  appSignature: [{ appSignature: [] }],
} as const satisfies Record<string, readonly SecurityRequirement[]>;

const PROBLEM_SCHEMA = {
  type: 'object',
  description: 'RFC 9457 problem details, as every error of this API',
  required: ['type', 'title', 'status', 'code', 'detail'],
  properties: {
    type: { type: 'string', examples: ['urn:socle:problem:auth.unauthenticated'] },
    title: { type: 'string' },
    status: { type: 'integer' },
    code: { type: 'string', description: 'Stable, dotted: branch on it' },
    detail: { type: 'string' },
    instance: { type: 'string' },
    requestId: { type: 'string' },
    errors: {
      type: 'array',
      items: {
        type: 'object',
        properties: { field: { type: 'string' }, message: { type: 'string' } },
      },
    },
  },
} as const;

interface OpenApiDocument {
  components?: { schemas?: Record<string, unknown> };
  paths?: Record<
    string,
    Record<string, { security?: unknown[]; responses?: Record<string, unknown> } | undefined> | undefined
  >;
}

/**
 * Completes the document (`transformObject` of @fastify/swagger): the `Problem` schema, and a 401
 * answer on every operation that declares a `security`.
 */
export function documentAuthentication<Document extends object>(openapi: Document): Document {
  const document = openapi as OpenApiDocument;
  document.components = {
    ...document.components,
    schemas: { ...document.components?.schemas, Problem: PROBLEM_SCHEMA },
  };
  for (const operations of Object.values(document.paths ?? {})) {
    for (const operation of Object.values(operations ?? {})) {
      if (operation === null || typeof operation !== 'object') continue;
      if (operation.security === undefined || operation.security.length === 0) continue;
      operation.responses ??= {};
      operation.responses['401'] ??= {
        description: 'Missing, invalid or expired credentials (see the security of this operation)',
        content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } },
      };
    }
  }
  return openapi;
}
