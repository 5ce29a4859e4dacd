import { randomUUID } from 'node:crypto';
import { isUuid } from '../kernel/ids/index.js';
import type { Socle } from '../kernel/socle.js';

/** A caller of the probe: a signed-in user acting in one organization. */
export interface ProbeCaller {
  readonly accessToken: string;
  readonly orgId: string;
}

/** One request the probe made as the other tenant, and what came back. */
export interface ProbeFinding {
  readonly route: string;
  readonly problem: string;
}

interface OpenApiOperation {
  security?: Record<string, unknown>[];
  parameters?: { in: string; name: string; required?: boolean }[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}
interface JsonSchema {
  type?: string | string[];
  format?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  examples?: unknown[];
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  minimum?: number;
  minLength?: number;
  pattern?: string;
  items?: JsonSchema;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
/**
 * Routes authenticated by an app signature instead of a session and organization (Pusher's HTTP
 * API, `security: [{ appSignature: [] }]`): the caller is the app's holder, so the two-tenant model
 * of the probe does not apply; their own tests cover signatures.
 */
const signatureOnly = (operation: OpenApiOperation) =>
  operation.security !== undefined &&
  operation.security.length > 0 &&
  operation.security.every((requirement) =>
    Object.keys(requirement).every((name) => name === 'appSignature'),
  );
/** Routes that end the caller's own session; the probe does not seed with them. */
const SELF_DESTRUCTIVE = new Set(['/auth/sign-out', '/auth/sign-out-everywhere', '/org/leave']);

/** A value valid for a JSON schema: its example, default, first literal, or one made from its type. */
export function exampleFor(schema: JsonSchema | undefined): unknown {
  if (schema === undefined) return undefined;
  if (schema.examples?.length) return schema.examples[0];
  if (schema.default !== undefined) return schema.default;
  if (schema.const !== undefined) return schema.const;
  if (schema.enum?.length) return schema.enum[0];
  if (schema.anyOf?.length) return exampleFor(schema.anyOf[0]);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'object': {
      const value: Record<string, unknown> = {};
      for (const name of schema.required ?? []) value[name] = exampleFor(schema.properties?.[name]);
      return value;
    }
    case 'array':
      return [];
    case 'integer':
    case 'number':
      return schema.minimum ?? 1;
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      if (schema.format === 'uuid') return randomUUID();
      if (schema.format === 'email') return `probe-${randomUUID().slice(0, 8)}@example.com`;
      if (schema.format === 'date-time') return new Date().toISOString();
      if (schema.pattern) return 'probe-value';
      return 'probe'.padEnd(schema.minLength ?? 1, 'x');
  }
}

/** Every uuid in a JSON document, by the name of the field holding it. */
export function harvest(value: unknown, into: Map<string, Set<string>>, field = ''): void {
  if (typeof value === 'string' && isUuid(value)) {
    const ids = into.get(field) ?? new Set<string>();
    ids.add(value);
    into.set(field, ids);
  } else if (Array.isArray(value)) {
    for (const item of value) harvest(item, into, field);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) harvest(item, into, key);
  }
}

/**
 * The cross-tenant probe. From the server's own `/openapi.json` (so a route added by any module or
 * app is probed without new test code), it:
 *
 * 1. seeds tenant A: calls every POST route without path parameters as A, with a body made from
 *    its schema (examples first);
 * 2. harvests the ids tenant A can see: calls every GET route without path parameters as A;
 * 3. as tenant B, calls every route with path parameters using A's ids (a `{userId}` takes A's
 *    `userId` values, an `{id}` the `id` values of the list route above it) and expects 404;
 * 4. as tenant B, calls every list route and expects none of A's ids in the answer.
 *
 * A route with a path parameter for which no id of A could be found is reported too: it would
 * otherwise escape the probe.
 */
export async function probeCrossTenantAccess(
  socle: Pick<Socle, 'app'>,
  a: ProbeCaller,
  b: ProbeCaller,
): Promise<{ findings: ProbeFinding[]; probed: string[] }> {
  const document = (await socle.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Partial<Record<(typeof METHODS)[number], OpenApiOperation>>>;
  };
  const headersOf = (caller: ProbeCaller) => ({
    authorization: `Bearer ${caller.accessToken}`,
    'x-org-id': caller.orgId,
  });
  const routes = Object.entries(document.paths).flatMap(([path, operations]) =>
    METHODS.filter(
      (method) => operations[method] !== undefined && !signatureOnly(operations[method] as OpenApiOperation),
    ).map((method) => ({
      path,
      method,
      operation: operations[method] as OpenApiOperation,
      parameters: [...path.matchAll(/\{([^}]+)\}/g)].map((match) => match[1] as string),
    })),
  );
  const bodyOf = (operation: OpenApiOperation) =>
    exampleFor(operation.requestBody?.content?.['application/json']?.schema);
  const findings: ProbeFinding[] = [];
  const probed: string[] = [];

  for (const route of routes.filter(
    (candidate) => candidate.method === 'post' && candidate.parameters.length === 0,
  )) {
    if (SELF_DESTRUCTIVE.has(route.path) || route.path.startsWith('/auth/')) continue;
    const body = bodyOf(route.operation);
    await socle.app.inject({
      method: 'POST',
      url: route.path,
      headers: headersOf(a),
      ...(body === undefined ? {} : { payload: body as object }),
    });
  }

  const listRoutes = routes.filter((route) => route.method === 'get' && route.parameters.length === 0);
  const idsOfA = new Map<string, Set<string>>();
  const idsByList = new Map<string, Map<string, Set<string>>>();
  for (const route of listRoutes) {
    const response = await socle.app.inject({ method: 'GET', url: route.path, headers: headersOf(a) });
    if (response.statusCode !== 200 || !response.headers['content-type']?.includes('json')) continue;
    const found = new Map<string, Set<string>>();
    harvest(response.json(), found);
    idsByList.set(route.path, found);
    for (const [field, ids] of found)
      for (const id of ids) (idsOfA.get(field) ?? idsOfA.set(field, new Set()).get(field))?.add(id);
  }
  // Ids B can legitimately see (its own user id, its own organization) are not A's secrets.
  const idsOfB = new Map<string, Set<string>>();
  for (const route of listRoutes) {
    const response = await socle.app.inject({ method: 'GET', url: route.path, headers: headersOf(b) });
    if (response.statusCode === 200 && response.headers['content-type']?.includes('json'))
      harvest(response.json(), idsOfB);
  }
  const visibleToB = new Set([...idsOfB.values()].flatMap((ids) => [...ids]));
  const secretIdsOfA = new Set(
    [...idsOfA.values()].flatMap((ids) => [...ids]).filter((id) => !visibleToB.has(id)),
  );

  for (const route of routes.filter((candidate) => candidate.parameters.length > 0)) {
    const label = `${route.method.toUpperCase()} ${route.path}`;
    const parent = route.path.slice(0, route.path.lastIndexOf('/{'));
    let url = route.path;
    let missing: string | undefined;
    for (const parameter of route.parameters) {
      const candidates = [
        ...(idsByList.get(parent)?.get(parameter === 'id' ? 'id' : parameter) ?? idsOfA.get(parameter) ?? []),
      ].filter((id) => secretIdsOfA.has(id));
      if (candidates[0] === undefined) {
        missing = parameter;
        break;
      }
      url = url.replace(`{${parameter}}`, candidates[0]);
    }
    if (missing !== undefined) {
      findings.push({
        route: label,
        problem: `no id of tenant A found for {${missing}}: give it a list route above it, or examples`,
      });
      continue;
    }
    const body = route.method === 'get' || route.method === 'delete' ? undefined : bodyOf(route.operation);
    const response = await socle.app.inject({
      method: route.method.toUpperCase() as 'GET',
      url,
      headers: headersOf(b),
      ...(body === undefined ? {} : { payload: body as object }),
    });
    probed.push(label);
    if (response.statusCode !== 404) {
      findings.push({
        route: label,
        problem: `answered ${response.statusCode} to tenant B for tenant A's resource (expected 404)`,
      });
    }
  }

  for (const route of listRoutes) {
    const response = await socle.app.inject({ method: 'GET', url: route.path, headers: headersOf(b) });
    if (response.statusCode !== 200) continue;
    const leaked = [...secretIdsOfA].filter((id) => response.body.includes(id));
    probed.push(`GET ${route.path}`);
    if (leaked.length > 0) {
      findings.push({
        route: `GET ${route.path}`,
        problem: `shows tenant B ${leaked.length} id(s) of tenant A`,
      });
    }
  }
  return { findings, probed };
}
