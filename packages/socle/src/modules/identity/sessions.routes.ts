import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import type { AccessTokens } from './access-tokens.service.js';
import { requireUser } from './authentication.hooks.js';
import type { SessionRow } from './identity.tables.js';
import { requireOperator } from './operator-access.hooks.js';
import { sessionErrors } from './sessions.errors.js';
import type { ClientInfo, SessionService } from './sessions.service.js';

/** What sign-in, its second step and refresh return. */
export const Tokens = Type.Object({
  accessToken: Type.String(),
  refreshToken: Type.String(),
  tokenType: Type.Literal('Bearer'),
  expiresIn: Type.Integer({ description: 'Seconds until the access token expires' }),
  sessionId: Type.String({ format: 'uuid' }),
});
const Session = Type.Object({
  id: Type.String({ format: 'uuid' }),
  current: Type.Boolean(),
  createdAt: Type.String({ format: 'date-time' }),
  lastRefreshedAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
});
/** Where a request came from, kept with the session it opens. */
export function clientOf(request: { headers: Record<string, unknown>; ip: string }): ClientInfo {
  const agent = request.headers['user-agent'];
  return { userAgent: typeof agent === 'string' ? agent.slice(0, 512) : null, ip: request.ip ?? null };
}

/** Refresh, sign-out, the account's sessions and the public keys that verify access tokens (JWKS). */
export function registerSessionRoutes(
  app: HttpServer,
  sessions: SessionService,
  accessTokens: AccessTokens,
): void {
  const tags = ['identity'];

  app.post(
    '/auth/refresh',
    {
      schema: {
        tags,
        summary: 'Exchange a refresh token for new tokens (each refresh token works once)',
        body: Type.Object(
          { refreshToken: Type.String({ minLength: 1, maxLength: 200 }) },
          { additionalProperties: false },
        ),
        response: { 200: Tokens },
      },
    },
    async (request) => sessions.refresh(request.body.refreshToken),
  );

  app.post(
    '/auth/sign-out',
    { schema: { tags, security: routeSecurity.user, summary: 'End this session' } },
    async (request, reply) => {
      const auth = requireUser(request);
      await sessions.signOut(auth.userId, auth.sessionId);
      return reply.code(204).send();
    },
  );

  app.post(
    '/auth/sign-out-everywhere',
    { schema: { tags, security: routeSecurity.user, summary: 'End every session of this account' } },
    async (request, reply) => {
      await sessions.signOutEverywhere(requireUser(request).userId);
      return reply.code(204).send();
    },
  );

  app.get(
    '/auth/sessions',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'List the live sessions of this account',
        response: { 200: Type.Array(Session) },
      },
    },
    async (request) => {
      const auth = requireUser(request);
      const rows = await sessions.list(auth.userId);
      return rows.map((row) => ({
        id: row.id,
        current: row.id === auth.sessionId,
        createdAt: row.created_at.toISOString(),
        lastRefreshedAt: row.last_refreshed_at.toISOString(),
        expiresAt: row.expires_at.toISOString(),
        userAgent: row.user_agent,
        ip: row.ip,
      }));
    },
  );

  app.delete(
    '/auth/sessions/:id',
    {
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Revoke one session of this account',
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      },
    },
    async (request, reply) => {
      await sessions.revoke(requireUser(request).userId, request.params.id);
      return reply.code(204).send();
    },
  );

  app.get(
    '/.well-known/jwks.json',
    { schema: { tags, summary: 'Public keys that verify access tokens (JWKS)' } },
    async (_request, reply) => reply.header('cache-control', 'public, max-age=300').send(accessTokens.jwks()),
  );
}

const OperatorSession = Type.Object({
  id: Type.String({ format: 'uuid' }),
  createdAt: Type.String({ format: 'date-time' }),
  lastRefreshedAt: Type.String({ format: 'date-time' }),
  expiresAt: Type.String({ format: 'date-time' }),
  userAgent: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
});
const sessionOf = (row: SessionRow) => ({
  id: row.id,
  createdAt: row.created_at.toISOString(),
  lastRefreshedAt: row.last_refreshed_at.toISOString(),
  expiresAt: row.expires_at.toISOString(),
  userAgent: row.user_agent,
  ip: row.ip,
});

/**
 * Another account's live sessions for operators holding `OPERATOR_TOKEN`: list them, revoke one
 * (a stolen laptop, a support request). Revocations are audited like every write.
 */
export function registerOperatorSessionRoutes(
  app: HttpServer,
  sessions: SessionService,
  accountExists: (userId: string) => Promise<boolean>,
): void {
  const tags = ['identity'];
  const UserParams = Type.Object({ userId: Type.String({ format: 'uuid' }) });
  const checked = async (request: Parameters<typeof requireOperator>[0], userId: string) => {
    requireOperator(request);
    if (!(await accountExists(userId))) throw sessionErrors.accountNotFound(userId);
  };
  app.get(
    '/operator/users/:userId/sessions',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary: "An account's live sessions, the latest refreshed first (operator token)",
        params: UserParams,
        response: { 200: Type.Object({ sessions: Type.Array(OperatorSession) }) },
      },
    },
    async (request) => {
      await checked(request, request.params.userId);
      return { sessions: (await sessions.list(request.params.userId)).map(sessionOf) };
    },
  );
  app.delete(
    '/operator/users/:userId/sessions/:id',
    {
      schema: {
        tags,
        security: routeSecurity.operator,
        summary: "Revoke one of an account's sessions: its refresh token stops working (operator token)",
        params: Type.Object({
          userId: Type.String({ format: 'uuid' }),
          id: Type.String({ format: 'uuid', description: 'the session' }),
        }),
      },
    },
    async (request, reply) => {
      await checked(request, request.params.userId);
      await sessions.revoke(request.params.userId, request.params.id, 'operator');
      return reply.code(204).send();
    },
  );
}
