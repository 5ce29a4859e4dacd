import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import cors from '@fastify/cors';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  LogController,
  type RawServerDefault,
} from 'fastify';
import type { Config } from '../config/index.js';
import type { LoadShedding } from '../db/index.js';
import { httpErrors } from '../errors/index.js';
import type { Logger } from '../log/index.js';
import type { Metrics } from '../metrics/index.js';
import { limitConnectionsPerAddress } from './connection-limit.js';
import {
  answerClientError,
  answerFrameworkError,
  answerUnmetExpectation,
  installErrorHandling,
  REQUEST_ID_HEADER,
  sendProblem,
} from './error-handling.js';
import { documentAuthentication, SECURITY_SCHEMES } from './openapi.js';
import { refineFormats } from './request-values.js';

/** The Fastify instance modules register routes on, typed for TypeBox schemas. */
export type HttpServer = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface CreateHttpServerOptions {
  readonly config: Pick<
    Config,
    | 'bodyLimitBytes'
    | 'corsOrigins'
    | 'trustProxy'
    | 'httpRequestTimeoutMs'
    | 'httpHeadersTimeoutMs'
    | 'httpKeepAliveTimeoutMs'
    | 'httpMaxConnectionsPerIp'
  >;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly version: string;
  /** True once shutdown began. */
  readonly isDraining: () => boolean;
  /**
   * Counts requests whose handler has not finished. A client that disconnects does not stop its
   * handler, but it does let the server close: shutdown waits on this count before closing the
   * database under running handlers.
   */
  readonly running: { count: number };
  /**
   * The request pool's load shedding: each request runs admitted to it (its first database lease
   * may be refused with 503 `db.overloaded`), except the health probes.
   */
  readonly loadShedding?: LoadShedding;
}

/** Probes and metrics never shed: they answer for the node (embedded, on the same session), and overload is when they matter. */
const NEVER_SHED = new Set(['/livez', '/readyz', '/metrics']);

/** A client may pass its own request id if it is short and safe to log; otherwise one is made. */
const INCOMING_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export { REQUEST_ID_HEADER };

/**
 * `TRUST_PROXY` as Fastify takes it. A number of hops trusts that many proxies from the socket
 * inwards (what Fastify does for a number, which its types omit): the client IP is the address the
 * outermost of them added, which a client cannot forge; `true` believes the left-most address.
 */
function trustProxyOption(
  trust: Config['trustProxy'],
): boolean | string | ((address: string, hop: number) => boolean) {
  if (typeof trust === 'number') return (_address, hop) => hop < trust;
  return typeof trust === 'object' ? trust.join(',') : trust;
}

/**
 * Builds the Fastify server with Socle's cross-cutting behaviour: request ids, problem+json
 * errors, body limits, CORS, metrics and the OpenAPI document. Modules add routes afterwards.
 */
export async function createHttpServer(options: CreateHttpServerOptions): Promise<HttpServer> {
  const { config, metrics } = options;
  // Node refuses headers timeouts longer than the request timeout.
  const headersTimeout = Math.min(config.httpHeadersTimeoutMs, config.httpRequestTimeoutMs);
  const app = Fastify({
    // Fastify turns Node's request timeout off by default: a client that sent headers and part of
    // its body held the connection forever. Node checks both timeouts every
    // `connectionsCheckingInterval` (30 s by default), so a timeout could overrun by that much.
    requestTimeout: config.httpRequestTimeoutMs,
    keepAliveTimeout: config.httpKeepAliveTimeoutMs,
    http: {
      requestTimeout: config.httpRequestTimeoutMs,
      headersTimeout,
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(headersTimeout / 4))),
      // Node would answer an HTTP/1.1 request without Host with a bare 400 (no problem+json, no
      // request id): the onRequest hook below refuses it instead.
      requireHostHeader: false,
    },
    loggerInstance: options.log as FastifyBaseLogger,
    // Socle writes one line per request itself (onResponse below), at a level chosen by status.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: 'requestId' }),
    requestIdHeader: false,
    genReqId: (request) => {
      const incoming = request.headers[REQUEST_ID_HEADER];
      return typeof incoming === 'string' && INCOMING_REQUEST_ID.test(incoming) ? incoming : randomUUID();
    },
    bodyLimit: config.bodyLimitBytes,
    // A hop count takes the address the nearest proxies added; `true` believes the left-most one.
    trustProxy: trustProxyOption(config.trustProxy),
    // Socle answers requests during shutdown itself (onRequest below), as problem+json.
    return503OnClosing: false,
    // Errors raised before routing, and requests Node's parser refused, are problem+json too.
    frameworkErrors: answerFrameworkError,
    clientErrorHandler: (error, socket) => answerClientError(error, socket, options.log),
    ajv: {
      customOptions: { allErrors: true, coerceTypes: 'array', useDefaults: true, removeAdditional: false },
      onCreate: refineFormats,
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Behind a trusted proxy every connection comes from the proxy's address: the proxy limits clients.
  app.server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) =>
    answerUnmetExpectation(request, response, options.log),
  );
  limitConnectionsPerAddress(
    app.server,
    config.trustProxy ? 0 : config.httpMaxConnectionsPerIp,
    metrics.registry,
  );

  // Callback-style hooks: these run on every request and do nothing asynchronous.
  const { running } = options;
  app.addHook('onRequest', (request, reply, done) => {
    running.count++;
    reply.header(REQUEST_ID_HEADER, request.id);
    if (request.raw.httpVersion === '1.1' && request.headers.host === undefined) {
      sendProblem(reply, request, httpErrors.malformedRequest('an HTTP/1.1 request needs a Host header'));
      return;
    }
    // While draining, a new request on an open keep-alive connection is turned away (readiness
    // still answers, with its failing check), so the load balancer retries it on another node.
    if (options.isDraining() && request.url !== '/readyz') {
      sendProblem(reply, request, httpErrors.shuttingDown());
      return;
    }
    const shedding = options.loadShedding;
    if (shedding === undefined || NEVER_SHED.has(request.routeOptions.url ?? '')) done();
    else shedding.admit(done);
  });
  // The handler (or error handler) has produced the reply: it no longer uses the database.
  app.addHook('onSend', (_request, _reply, payload, done) => {
    running.count--;
    done(null, payload);
  });
  app.addHook('onResponse', (request, reply, done) => {
    const status = reply.statusCode;
    metrics.observeHttpRequest(
      request.method,
      request.routeOptions.url ?? 'unmatched',
      status,
      reply.elapsedTime / 1000,
    );
    if (status >= 400 || options.log.isLevelEnabled('debug')) {
      const line = {
        method: request.method,
        url: request.url,
        status,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
      };
      // A 503 is an outage or a drain that its own component logs once (db.unavailable,
      // redis.unavailable, shutting down): a line per refused request would flood the log.
      if (status === 503) request.log.debug(line, 'request refused: service unavailable');
      else if (status >= 500) request.log.error(line, 'request failed');
      else if (status >= 400) request.log.info(line, 'request refused');
      else request.log.debug(line, 'request completed');
    }
    done();
  });

  installErrorHandling(app, config.bodyLimitBytes);

  if (config.corsOrigins.length > 0) {
    const anyOrigin = config.corsOrigins.includes('*');
    await app.register(cors, {
      origin: anyOrigin ? true : [...config.corsOrigins],
      credentials: !anyOrigin,
      exposedHeaders: [REQUEST_ID_HEADER, 'retry-after'],
    });
  }

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: { title: 'Socle', version: options.version, description: 'HTTP API of this Socle server' },
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    transformObject: (document) =>
      'openapiObject' in document ? documentAuthentication(document.openapiObject) : document.swaggerObject,
  });
  await app.register(swaggerUi, { routePrefix: '/docs' });
  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger());

  return app;
}
