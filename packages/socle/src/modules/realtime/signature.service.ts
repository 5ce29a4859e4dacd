import type { FastifyRequest } from 'fastify';
import type { Clock } from '../../kernel/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import { hmacSha256Hex, md5Hex, restSigningText, sameSecret } from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';

/** How far `auth_timestamp` may be from the server's clock (Pusher's rule; Soketi does not check it). */
const TIMESTAMP_TOLERANCE_SECONDS = 600;

declare module 'fastify' {
  interface FastifyRequest {
    /** The request body as received, for `body_md5` (set on the realtime HTTP API routes only). */
    rawBody?: string;
    /** The app whose secret signed the request (set by the HTTP API's signature check). */
    realtimeApp?: RealtimeApp;
  }
}

/** A call to Pusher's HTTP API as signed: what the signature covers. */
export interface SignedRequest {
  readonly appId: string;
  readonly method: string;
  /** The path as sent, without the query. */
  readonly path: string;
  /** `auth_key`, `auth_timestamp`, `auth_signature`, `body_md5` and the call's own parameters. */
  readonly query: Readonly<Record<string, string | undefined>>;
  /** The body as received ('' without one). */
  readonly body: string;
}

export interface SignatureService {
  /**
   * The app that signed the request: key, timestamp within ±600 s, body MD5 and HMAC-SHA256 of the
   * app secret are all checked (`realtime.app_not_found`, `realtime.invalid_signature` otherwise).
   */
  verify(request: SignedRequest): Promise<RealtimeApp>;
  /** The same check as a Fastify preHandler: sets `request.realtimeApp`. */
  preHandler(request: FastifyRequest): Promise<void>;
}

export function createSignatureService(options: {
  readonly apps: AppDirectory;
  readonly clock: Clock;
}): SignatureService {
  const { apps, clock } = options;
  const verify = async (request: SignedRequest): Promise<RealtimeApp> => {
    const target = await apps.byId(request.appId);
    if (target === undefined) throw realtimeErrors.appNotFound();
    const { query } = request;
    if (query.auth_key !== target.key) throw realtimeErrors.invalidSignature('unknown auth_key');
    const timestamp = Number(query.auth_timestamp);
    const nowSeconds = clock.now().getTime() / 1000;
    if (!Number.isFinite(timestamp) || Math.abs(nowSeconds - timestamp) > TIMESTAMP_TOLERANCE_SECONDS) {
      throw realtimeErrors.invalidSignature(
        `auth_timestamp is more than ${TIMESTAMP_TOLERANCE_SECONDS} s from the server time`,
      );
    }
    if (request.body !== '' && query.body_md5 !== md5Hex(request.body))
      throw realtimeErrors.invalidSignature('body_md5 does not match the body');
    const expected = hmacSha256Hex(target.secret, restSigningText(request.method, request.path, query));
    if (!sameSecret(query.auth_signature ?? '', expected))
      throw realtimeErrors.invalidSignature('auth_signature does not match');
    return target;
  };
  return {
    verify,
    async preHandler(request) {
      request.realtimeApp = await verify({
        appId: (request.params as { appId: string }).appId,
        method: request.method,
        path: (request.raw.url ?? request.url).split('?')[0] as string,
        query: request.query as Record<string, string>,
        body: request.rawBody ?? '',
      });
    },
  };
}
