import { createHash, createHmac, randomUUID } from 'node:crypto';
import net from 'node:net';
import type { Socle } from '../kernel/socle.js';
import { exampleFor, harvest } from './cross-tenant-probe.js';

/** A way to call the API: the headers that authenticate a request (none for anonymous). */
export interface FuzzCredential {
  readonly name: string;
  readonly headers: Readonly<Record<string, string>>;
  /**
   * The security scheme of the OpenAPI document these headers satisfy (`accessToken`, `apiKey`,
   * `operatorToken`): an operation that does not declare it gets only the valid request with them
   * (which it must refuse cleanly), not every variant. Without it, every operation gets every variant.
   */
  readonly scheme?: string;
  /**
   * A realtime app to sign Pusher HTTP API requests with (`security: appSignature`), so they get
   * past the signature check into the handler.
   */
  readonly app?: { readonly id: string; readonly key: string; readonly secret: string };
}

/** One answer the gate refuses: a 5xx, or an error that is not problem+json with a request id. */
export interface FuzzFinding {
  readonly request: string;
  readonly status: number;
  readonly problem: string;
}

export interface FuzzReport {
  /** Requests sent (in-process and on sockets). */
  readonly sent: number;
  readonly serverErrors: number;
  readonly findings: readonly FuzzFinding[];
  /** `METHOD /path` of every operation of the document that was fuzzed. */
  readonly operations: readonly string[];
  /** The operations that answered 2xx at least once: the gate got past their checks. */
  readonly succeeded: readonly string[];
  /** How many answers of each status. */
  readonly statuses: Readonly<Record<number, number>>;
}

/**
 * The state an operation needs for its valid request to succeed (an invitation token, a session id,
 * a TOTP code), so the gate fuzzes what lies behind the checks, not only the checks. Each part
 * replaces what the gate would have derived from the schemas; the variants break one thing of it.
 */
export interface FuzzPreparation {
  /** Path parameter values, by name, unencoded. */
  readonly path?: Readonly<Record<string, string>>;
  /** The valid JSON body (sent as JSON even when the operation declares no body schema). */
  readonly body?: unknown;
  /**
   * The valid body as bytes of its own type, for an operation that reads a raw body (an image
   * upload): sent as is with this `content-type` instead of `body`; the variants send the wrong
   * bodies and types around it.
   */
  readonly rawBody?: { readonly contentType: string; readonly bytes: Buffer };
  /** Headers sent instead of the credential's (another person's token and organization). */
  readonly headers?: Readonly<Record<string, string>>;
  /** Query parameter values, by name, unencoded (a signed link's `expires` and `signature`). */
  readonly query?: Readonly<Record<string, string>>;
}

export interface FuzzOptions {
  /**
   * The credentials to send each operation's requests with, asked again before each operation:
   * return fresh ones when a previous operation ended them (sign-out, erasure, key revocation).
   */
  readonly credentials: () => Promise<readonly FuzzCredential[]>;
  /** Also send the raw-socket cases (the server must be listening on `url`). */
  readonly url?: string;
  /**
   * Makes the state `operation` (`METHOD /path`) needs with `credential`, or `undefined` to leave
   * it to the schemas. Asked before the operation's requests with each credential, and again after
   * each of them succeeds (at most `maxPreparations` times), since success may spend the state (a
   * single-use token, a removed member).
   */
  readonly prepare?: (operation: string, credential: FuzzCredential) => Promise<FuzzPreparation | undefined>;
  /** How many times `prepare` is asked per operation and credential; 20 unless told. */
  readonly maxPreparations?: number;
  /**
   * Fuzzes only the operations (`METHOD /path`) this accepts, and the raw-socket cases only on
   * their paths: a module's own gate (payments) without walking every route again. Default: all.
   */
  readonly only?: (operation: string) => boolean;
}

interface JsonSchema {
  type?: string | string[];
  format?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  anyOf?: JsonSchema[];
}
interface Parameter {
  in: 'path' | 'query' | 'header';
  name: string;
  required?: boolean;
  schema?: JsonSchema;
}
interface Operation {
  security?: Record<string, unknown>[];
  parameters?: Parameter[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
}
interface FuzzRequest {
  readonly label: string;
  readonly path: Record<string, string>;
  readonly query: readonly (readonly [string, string])[];
  readonly headers: Record<string, string>;
  readonly body?: string | Buffer;
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;
const MEGABYTE_STRING = JSON.stringify('x'.repeat(1024 * 1024));
const LARGE_STRING = JSON.stringify('x'.repeat(64 * 1024));

/** JSON texts put in place of one body value (text, so `1e400` stays a number literal). */
const BAD_JSON_VALUES = [
  '"a\\u0000b"',
  '"\\ud800"',
  '"1e400"',
  '1e400',
  '-1e400',
  '1e300',
  '9007199254740993',
  '2147483648',
  '-1',
  '0',
  '1.5',
  'null',
  'true',
  '[]',
  '{}',
  '""',
  '"   "',
  '[{"__proto__":{"polluted":true}}]',
  '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
  '"0000-01-01T00:00:00Z"',
  '"9999-12-31T23:59:60Z"',
  '"00000000-0000-0000-0000-000000000000"',
  '"FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF"',
  '"x@x"',
  LARGE_STRING,
];
/** Already percent-encoded values put in place of one query or path value. */
const BAD_URL_VALUES = [
  '%00',
  'a%00b',
  '%FF%FE',
  '%ED%A0%80',
  '1e309',
  '-1e309',
  '1e300',
  '9007199254740993',
  '2147483648',
  '-1',
  '0',
  '',
  'null',
  '__proto__',
  'constructor',
  '0000-01-01T00:00:00Z',
  '00000000-0000-0000-0000-000000000000',
  'FFFFFFFF-FFFF-4FFF-BFFF-FFFFFFFFFFFF',
  '..',
  '%2F',
  'x'.repeat(99),
  'x'.repeat(101),
];
const BAD_HEADER_VALUES = ['not-a-uuid', '00000000-0000-0000-0000-000000000000', '', 'x'.repeat(8000)];
const BAD_AUTH_HEADERS: Record<string, string>[] = [
  { authorization: 'Bearer x' },
  { authorization: 'Bearer a.b.c' },
  { authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' },
  { authorization: 'Basic dXNlcjpwYXNz' },
  { authorization: 'Bearer' },
  { 'x-api-key': 'sk_x' },
  { 'x-api-key': 'x'.repeat(5000) },
  { 'x-operator-token': 'x' },
  { 'x-request-id': '%00' },
];

/**
 * The schema-derived fuzz gate. From the server's own `/openapi.json` (so a route added by any
 * module or app is fuzzed without new test code) it sends every operation, with each credential:
 * a request made from its schemas, then that request with one thing broken at a time: each body
 * value, query parameter, header and path parameter replaced by a wrong type, a NUL byte, a lone
 * surrogate, an infinite or huge number, a long string, `__proto__`/`constructor`; whole bodies
 * that are missing fields, extra fields, not JSON, not UTF-8, 1 MB, nested 10,000 deep or of the
 * wrong content type; bad or forged credentials. With `url`, it also sends each path requests
 * Node's HTTP parser refuses (raw bytes in the path, NUL in a header, Content-Length with
 * Transfer-Encoding) on a real socket.
 *
 * Any 5xx is a finding, and so is any error answer that is not `application/problem+json` with an
 * `x-request-id`.
 */
export async function fuzzEveryOperation(
  socle: Pick<Socle, 'app'>,
  options: FuzzOptions,
): Promise<FuzzReport> {
  const document = (await socle.app.inject({ method: 'GET', url: '/openapi.json' })).json() as {
    paths: Record<string, Partial<Record<(typeof METHODS)[number], Operation>>>;
  };
  const findings: FuzzFinding[] = [];
  const operations: string[] = [];
  const succeeded = new Set<string>();
  const statuses: Record<number, number> = {};
  let sent = 0;
  let serverErrors = 0;
  const check = (label: string, status: number, headers: Record<string, unknown>, body: string) => {
    sent++;
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (status >= 500) serverErrors++;
    const problem =
      status >= 500
        ? `answered ${status}: ${body.slice(0, 300)}`
        : status < 400
          ? undefined
          : !String(headers['content-type'] ?? '').startsWith('application/problem+json')
            ? `answered ${status} as ${String(headers['content-type'])}: ${body.slice(0, 200)}`
            : headers['x-request-id'] === undefined
              ? `answered ${status} without x-request-id`
              : problemStatusOf(body) !== status
                ? `answered ${status} with a problem document of another status: ${body.slice(0, 200)}`
                : undefined;
    if (problem !== undefined && findings.length < 200) findings.push({ request: label, status, problem });
  };

  for (const [path, byMethod] of Object.entries(document.paths)) {
    for (const method of METHODS) {
      const operation = byMethod[method];
      if (operation === undefined) continue;
      if (options.only !== undefined && !options.only(`${method.toUpperCase()} ${path}`)) continue;
      operations.push(`${method.toUpperCase()} ${path}`);
      const credentials = await options.credentials();
      for (const credential of credentials) {
        const ids = await idsAbove(socle, path, credential);
        const accepted =
          credential.scheme === undefined ||
          operation.security?.some(
            (requirement) => credential.scheme !== undefined && credential.scheme in requirement,
          ) === true ||
          (credential.app !== undefined && signedBy(operation));
        const name = `${method.toUpperCase()} ${path}`;
        let preparations = 0;
        const prepare = async () => {
          preparations++;
          return options.prepare?.(name, credential);
        };
        let preparation = await prepare();
        let requests = [...variantsOf(method, operation, credential, ids, preparation)];
        for (let index = 0; index < requests.length; index++) {
          if (!accepted && index > 0) break;
          const request = requests[index] as FuzzRequest;
          const url = urlOf(path, request);
          const signedUrl =
            credential.app !== undefined && signedBy(operation)
              ? signPusherRequest(method, url, request.body, credential.app)
              : url;
          const response = await socle.app.inject({
            method: method.toUpperCase() as 'GET',
            url: signedUrl,
            headers: request.headers,
            // Each request from an address of its own, so per-address rate limits do not stop the
            // gate at the door of sign-in and sign-up: it reaches what is behind them.
            remoteAddress: `10.${(sent >> 16) & 255}.${(sent >> 8) & 255}.${sent & 255}`,
            ...(request.body === undefined ? {} : { payload: request.body }),
          });
          if (response.statusCode < 300) succeeded.add(name);
          check(
            `${name} as ${credential.name}: ${request.label}`,
            response.statusCode,
            response.headers,
            response.body,
          );
          if (
            response.statusCode < 300 &&
            preparation !== undefined &&
            preparations < (options.maxPreparations ?? 20)
          ) {
            // The success may have spent the state: the next variants get fresh state.
            preparation = await prepare();
            requests = [...variantsOf(method, operation, credential, ids, preparation)];
          }
        }
      }
    }
  }

  if (options.url !== undefined) {
    const { hostname, port } = new URL(options.url);
    const paths = Object.keys(document.paths)
      .filter(
        (path) =>
          options.only === undefined ||
          METHODS.some(
            (method) =>
              document.paths[path]?.[method] !== undefined &&
              options.only?.(`${method.toUpperCase()} ${path}`) === true,
          ),
      )
      .map((path) => path.replaceAll(/\{[^}]+\}/g, 'x'));
    for (const path of paths) {
      for (const [label, text] of rawRequests(path)) {
        const answer = await sendRaw(hostname, Number(port), text);
        const parsed = parseRawResponse(answer);
        check(`raw ${label} ${path}`, parsed.status, parsed.headers, parsed.body);
      }
    }
  }
  return { sent, serverErrors, findings, operations, succeeded: [...succeeded], statuses };
}

/**
 * Ids the credential can see in the list route above a path with parameters (`/org/members` for
 * `/org/members/{userId}`), by field name, so the valid request names a real resource.
 */
async function idsAbove(
  socle: Pick<Socle, 'app'>,
  path: string,
  credential: FuzzCredential,
): Promise<Map<string, Set<string>>> {
  const ids = new Map<string, Set<string>>();
  const parameter = path.indexOf('/{');
  if (parameter <= 0 || path.startsWith('/apps/')) return ids;
  const response = await socle.app.inject({
    method: 'GET',
    url: path.slice(0, parameter),
    headers: credential.headers,
  });
  if (response.statusCode === 200 && response.headers['content-type']?.includes('json'))
    harvest(response.json(), ids);
  return ids;
}

function problemStatusOf(body: string): number | undefined {
  try {
    const parsed = JSON.parse(body) as { status?: unknown; code?: unknown };
    return typeof parsed.code === 'string' && typeof parsed.status === 'number' ? parsed.status : undefined;
  } catch {
    return undefined;
  }
}

const signedBy = (operation: Operation) =>
  operation.security?.some((requirement) => 'appSignature' in requirement) === true;

/** The valid request of an operation, then one variant per broken part. */
function* variantsOf(
  method: string,
  operation: Operation,
  credential: FuzzCredential,
  ids: ReadonlyMap<string, Set<string>>,
  preparation: FuzzPreparation | undefined,
): Generator<FuzzRequest> {
  const parameters = operation.parameters ?? [];
  const path: Record<string, string> = {};
  const query: [string, string][] = [];
  const headers: Record<string, string> = { ...(preparation?.headers ?? credential.headers) };
  for (const parameter of parameters) {
    if (parameter.in === 'path') {
      const [known] = ids.get(parameter.name) ?? [];
      const prepared = preparation?.path?.[parameter.name];
      path[parameter.name] =
        prepared !== undefined
          ? encodeURIComponent(prepared)
          : parameter.name === 'appId' && credential.app !== undefined
            ? credential.app.id
            : encodeURIComponent(known ?? String(exampleFor(parameter.schema) ?? 'x'));
    } else if (parameter.in === 'query' && preparation?.query?.[parameter.name] !== undefined) {
      query.push([parameter.name, encodeURIComponent(preparation.query[parameter.name] as string)]);
    } else if (parameter.in === 'query' && parameter.required) {
      query.push([parameter.name, encodeURIComponent(String(exampleFor(parameter.schema)))]);
    } else if (parameter.in === 'header' && headers[parameter.name] === undefined) {
      headers[parameter.name] = String(exampleFor(parameter.schema));
    }
  }
  const bodySchema = operation.requestBody?.content?.['application/json']?.schema;
  const json = { 'content-type': 'application/json' };
  // A prepared body is sent even where no JSON schema is declared (a webhook's raw body).
  const baseBody =
    preparation?.body !== undefined
      ? preparation.body
      : bodySchema === undefined
        ? undefined
        : (exampleFor(bodySchema) as unknown);
  const declared = new Set(parameters.map((parameter) => parameter.name));
  for (const [name, value] of Object.entries(preparation?.query ?? {}))
    if (!declared.has(name)) query.push([name, encodeURIComponent(value)]);
  const raw = preparation?.rawBody;
  const base: FuzzRequest =
    raw !== undefined
      ? {
          label: 'valid request',
          path,
          query,
          headers: { ...headers, 'content-type': raw.contentType },
          body: raw.bytes,
        }
      : {
          label: 'valid request',
          path,
          query,
          headers: baseBody === undefined ? headers : { ...headers, ...json },
          ...(baseBody === undefined ? {} : { body: JSON.stringify(baseBody) }),
        };
  yield base;

  // Path parameters.
  for (const name of Object.keys(path))
    for (const value of BAD_URL_VALUES)
      yield { ...base, label: `path ${name}=${value.slice(0, 20)}`, path: { ...path, [name]: value } };

  // Query parameters, declared or not.
  const queryNames = [
    ...parameters.filter((parameter) => parameter.in === 'query').map((parameter) => parameter.name),
    '__proto__',
    'constructor[prototype]',
  ];
  for (const name of queryNames) {
    const others = query.filter(([key]) => key !== name);
    for (const value of BAD_URL_VALUES)
      yield { ...base, label: `query ${name}=${value.slice(0, 20)}`, query: [...others, [name, value]] };
    yield { ...base, label: `query ${name} twice`, query: [...others, [name, 'a'], [name, 'b']] };
  }
  yield { ...base, label: 'query a%00=1', query: [...query, ['a%00', '1']] };

  // Headers: declared ones, and credentials that are malformed or forged.
  for (const parameter of parameters.filter((candidate) => candidate.in === 'header'))
    for (const value of BAD_HEADER_VALUES)
      yield {
        ...base,
        label: `header ${parameter.name}=${value.slice(0, 20)}`,
        headers: { ...base.headers, [parameter.name]: value },
      };
  for (const bad of BAD_AUTH_HEADERS)
    yield {
      ...base,
      label: `headers ${JSON.stringify(bad).slice(0, 60)}`,
      headers: { ...base.headers, ...bad },
    };

  // Bodies: one value broken at a time, then whole bodies.
  const withBody = (label: string, body: string | Buffer, contentType = 'application/json') => ({
    ...base,
    label,
    headers: { ...base.headers, 'content-type': contentType },
    body,
  });
  if (bodySchema !== undefined && baseBody !== null && typeof baseBody === 'object') {
    for (const pointer of pointersOf(bodySchema)) {
      for (const value of BAD_JSON_VALUES)
        yield withBody(
          `body ${pointer.join('/')}=${value.slice(0, 20)}`,
          replaceAt(baseBody, pointer, value),
        );
      yield withBody(`body ${pointer.join('/')} missing`, JSON.stringify(removeAt(baseBody, pointer)));
    }
    yield withBody(
      'body with an invalid UTF-8 string',
      Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xff, 0xfe, 0xc3]), Buffer.from('"}')]),
    );
    const firstString = pointersOf(bodySchema).find((pointer) => typeAt(bodySchema, pointer) === 'string');
    if (firstString !== undefined) {
      const text = replaceAt(baseBody, firstString, '"\u0001INVALID\u0001"');
      const [before, after] = text.split('"\u0001INVALID\u0001"') as [string, string];
      yield withBody(
        `body ${firstString.join('/')} with invalid UTF-8 bytes`,
        Buffer.concat([
          Buffer.from(`${before}"a`),
          Buffer.from([0xff, 0xfe, 0xed, 0xa0, 0x80]),
          Buffer.from(`b"${after}`),
        ]),
      );
      yield withBody(
        `body ${firstString.join('/')} of 1 MB`,
        replaceAt(baseBody, firstString, MEGABYTE_STRING),
      );
    }
    yield withBody('body with an extra field', JSON.stringify({ ...(baseBody as object), fuzzExtra: 1 }));
    yield withBody(
      'body with __proto__ and constructor',
      `${JSON.stringify(baseBody).slice(0, -1)}${Object.keys(baseBody).length > 0 ? ',' : ''}"__proto__":{"isAdmin":true},"constructor":{"prototype":{"isAdmin":true}}}`,
    );
  }
  for (const [label, body] of [
    ['empty object', '{}'],
    ['array', '[]'],
    ['string', '"x"'],
    ['number', '1e400'],
    ['null', 'null'],
    ['truncated JSON', '{"a":'],
    ['nested 10,000 deep', `${'['.repeat(10_000)}${']'.repeat(10_000)}`],
    ['of 2 MB', `{"x":${JSON.stringify('x'.repeat(2 * 1024 * 1024))}}`],
  ] as const)
    yield withBody(`body ${label}`, body);
  yield withBody('body as text/plain', 'hello', 'text/plain');
  yield withBody('body as a form', 'a=1&b=%00', 'application/x-www-form-urlencoded');
  yield withBody('body as multipart', '--b\r\n\r\nx\r\n--b--', 'multipart/form-data; boundary=b');
  yield withBody('body with a charset', base.body ?? '{}', 'application/json; charset=latin1');
  yield withBody('body with a broken content type', base.body ?? '{}', 'application/json; ;;=');
  if (method === 'get' || method === 'delete') yield withBody('body on a GET or DELETE', '{"a":1}');
}

/** JSON pointers (as key lists) to each property of the schema, one level into nested objects. */
function pointersOf(schema: JsonSchema, prefix: string[] = [], depth = 0): string[][] {
  const pointers: string[][] = [];
  for (const [name, property] of Object.entries(schema.properties ?? {})) {
    pointers.push([...prefix, name]);
    if (depth < 1 && property.properties !== undefined)
      pointers.push(...pointersOf(property, [...prefix, name], depth + 1));
  }
  return pointers;
}

function typeAt(schema: JsonSchema, pointer: string[]): string | undefined {
  let current: JsonSchema | undefined = schema;
  for (const key of pointer) current = current?.properties?.[key];
  return Array.isArray(current?.type) ? current.type[0] : current?.type;
}

/** The JSON text of `value` with the value at `pointer` replaced by the JSON text `replacement`. */
function replaceAt(value: unknown, pointer: string[], replacement: string): string {
  const marker = `__fuzz_${randomUUID()}__`;
  const copy = structuredClone(value) as Record<string, unknown>;
  let parent = copy;
  for (const key of pointer.slice(0, -1)) {
    if (parent[key] === null || typeof parent[key] !== 'object') parent[key] = {};
    parent = parent[key] as Record<string, unknown>;
  }
  parent[pointer.at(-1) as string] = marker;
  return JSON.stringify(copy).replace(JSON.stringify(marker), () => replacement);
}

function removeAt(value: unknown, pointer: string[]): unknown {
  const copy = structuredClone(value) as Record<string, unknown>;
  let parent: Record<string, unknown> | undefined = copy;
  for (const key of pointer.slice(0, -1)) parent = parent?.[key] as Record<string, unknown> | undefined;
  if (parent !== undefined && typeof parent === 'object') delete parent[pointer.at(-1) as string];
  return copy;
}

function urlOf(path: string, request: FuzzRequest): string {
  const filled = path.replaceAll(/\{([^}]+)\}/g, (_match, name: string) => request.path[name] ?? 'x');
  const query = request.query.map(([key, value]) => `${encodeURIComponent(key)}=${value}`).join('&');
  return query === '' ? filled : `${filled}?${query}`;
}

const SIGNATURE_PARAMETERS = new Set([
  'auth_key',
  'auth_timestamp',
  'auth_version',
  'body_md5',
  'auth_signature',
]);

/** `url` with Pusher's auth_* query parameters (replacing any), signed with the app's secret. */
function signPusherRequest(
  method: string,
  url: string,
  body: string | Buffer | undefined,
  app: NonNullable<FuzzCredential['app']>,
): string {
  const [pathname = '', search = ''] = url.split('?', 2);
  const kept = search
    .split('&')
    .filter((pair) => pair !== '' && !SIGNATURE_PARAMETERS.has(pair.split('=')[0] ?? ''));
  const params: Record<string, string> = {};
  for (const [key, value] of new URLSearchParams(kept.join('&'))) params[key] = value;
  const added: Record<string, string> = {
    auth_key: app.key,
    auth_timestamp: String(Math.floor(Date.now() / 1000)),
    auth_version: '1.0',
    ...(body === undefined || body.length === 0
      ? {}
      : { body_md5: createHash('md5').update(body).digest('hex') }),
  };
  const signed = Object.entries({ ...params, ...added })
    .map(([key, value]) => [key.toLowerCase(), value] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const signature = createHmac('sha256', app.secret)
    .update(`${method.toUpperCase()}\n${pathname}\n${signed}`)
    .digest('hex');
  const query = [...kept, ...Object.entries(added).map(([key, value]) => `${key}=${value}`)];
  return `${pathname}?${query.join('&')}&auth_signature=${signature}`;
}

/** Requests Node's HTTP parser refuses, for one path. */
function rawRequests(path: string): [string, Buffer][] {
  const head = (line: string, headers: string) => `${line}\r\nHost: fuzz\r\n${headers}\r\n`;
  return [
    ['NUL in a header', Buffer.from(head(`GET ${path} HTTP/1.1`, 'X-Fuzz: a\u0000b\r\n'))],
    [
      'Content-Length with Transfer-Encoding',
      Buffer.from(head(`POST ${path} HTTP/1.1`, 'Content-Length: 3\r\nTransfer-Encoding: chunked\r\n')),
    ],
    [
      'raw bytes in the path',
      Buffer.concat([
        Buffer.from(`GET ${path}/`),
        Buffer.from([0xff, 0x00]),
        Buffer.from(' HTTP/1.1\r\nHost: fuzz\r\n\r\n'),
      ]),
    ],
    [
      'percent-encoded bytes in the path',
      Buffer.from(head(`GET ${path}/%FF%FE%00 HTTP/1.1`, 'Connection: close\r\n')),
    ],
    ['headers of 64 KB', Buffer.from(head(`GET ${path} HTTP/1.1`, `X-Fuzz: ${'a'.repeat(64 * 1024)}\r\n`))],
    // What Node's server (not its parser) or a WebSocket server would answer bare.
    ['HTTP/1.1 without Host', Buffer.from(`GET ${path} HTTP/1.1\r\nConnection: close\r\n\r\n`)],
    [
      'an unmet Expect',
      Buffer.from(
        head(`POST ${path} HTTP/1.1`, 'Expect: 200-ok\r\nContent-Length: 0\r\nConnection: close\r\n'),
      ),
    ],
    [
      'a WebSocket upgrade without a key',
      Buffer.from(
        head(
          `GET ${path} HTTP/1.1`,
          'Connection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n',
        ),
      ),
    ],
    ['an h2c upgrade', Buffer.from(head(`GET ${path} HTTP/1.1`, 'Connection: Upgrade\r\nUpgrade: h2c\r\n'))],
  ];
}

function sendRaw(host: string, port: number, data: Buffer): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, host, () => socket.write(data));
    const timer = setTimeout(() => socket.destroy(), 5000);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('latin1'));
    });
    // The server answers and closes; a request it waits on (a body never sent) is ended here.
    socket.setTimeout(2000, () => socket.end());
  });
}

function parseRawResponse(text: string): { status: number; headers: Record<string, string>; body: string } {
  const [head = '', ...rest] = text.split('\r\n\r\n');
  const [statusLine = '', ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 599);
  return {
    status,
    headers,
    body: status === 599 ? `no HTTP answer: ${JSON.stringify(text.slice(0, 100))}` : rest.join('\r\n\r\n'),
  };
}
