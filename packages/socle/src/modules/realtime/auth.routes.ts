import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { ChannelAuthorizer, ModuleDefinition } from '../../kernel/index.js';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireUser } from '../identity/index.js';
import { hasRole, type OrgRole, requireOrg } from '../tenancy/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import { OPERATOR_APP_ID } from './operator-feed.js';
import {
  channelAuth,
  channelType,
  encryptedChannelKey,
  memberProblem,
  needsAuthorization,
  SOCKET_ID,
  userAuth,
} from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';
import type { RealtimeChannelRule } from './realtime.settings.js';

/** A channel pattern, compiled: `presence-quiz-{roomId}` → a regular expression. */
interface ChannelRule {
  readonly pattern: string;
  readonly regex: RegExp;
  readonly names: readonly string[];
  readonly authorize: ChannelAuthorizer;
}

const NAME_CHARACTERS = '[-a-zA-Z0-9_=@,.;]';
const UUID = '[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}';

/**
 * Compiles a pattern: `{name}` matches one or more channel-name characters (with `ids`, `{orgId}`
 * and `{userId}` match a Socle id only, so `private-org-{orgId}-*` splits an id holding dashes
 * from the rest), `*` matches any rest.
 */
function compileRule(pattern: string, authorize: ChannelAuthorizer, ids = false): ChannelRule {
  const names: string[] = [];
  const source = pattern
    .split(/(\{[a-zA-Z_][a-zA-Z0-9_]*\}|\*)/)
    .map((part) => {
      if (part === '*') return `${NAME_CHARACTERS}*`;
      if (part.startsWith('{') && part.endsWith('}')) {
        const name = part.slice(1, -1);
        names.push(name);
        return ids && (name === 'orgId' || name === 'userId') ? `(${UUID})` : `(${NAME_CHARACTERS}+)`;
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    })
    .join('');
  return { pattern, regex: new RegExp(`^${source}$`), names, authorize };
}

/** Whether the caller acts in `orgId` (tenancy checked the membership) with at least `role`. */
function actsIn(request: FastifyRequest, orgId: string | undefined, role: OrgRole): boolean {
  requireUser(request);
  const org = request.org;
  return org !== null && (orgId === undefined || org.orgId === orgId) && hasRole(org.role, role);
}

/**
 * What the stock server allows without any module: a user's own `private-user-{userId}` channel,
 * and an organization's `private-org-{orgId}-*` / `presence-org-{orgId}-*` channels to its members
 * acting in it (`X-Org-Id` on the authorization request).
 */
const BUILT_IN_RULES: readonly ChannelRule[] = [
  compileRule('private-user-{userId}', (request, { userId }) => requireUser(request).userId === userId, true),
  compileRule('private-org-{orgId}-*', (request, { orgId }) => actsIn(request, orgId, 'viewer'), true),
  compileRule('presence-org-{orgId}-*', (request, { orgId }) => actsIn(request, orgId, 'viewer'), true),
];

/**
 * Every rule in the order they are tried (the first whose pattern matches decides): modules'
 * `channels`, then the configuration's `REALTIME_CHANNEL_RULES`, then the built-in ones.
 */
export function compileChannelRules(
  modules: readonly ModuleDefinition[],
  configured: readonly RealtimeChannelRule[] = [],
): ChannelRule[] {
  const rules: ChannelRule[] = [];
  for (const module of modules) {
    for (const [pattern, authorize] of Object.entries(module.channels ?? {}))
      rules.push(compileRule(pattern, authorize));
  }
  for (const { pattern, role } of configured) {
    rules.push(
      compileRule(
        pattern,
        (request, { orgId }) =>
          role === 'user' ? requireUser(request) !== undefined : actsIn(request, orgId, role),
        true,
      ),
    );
  }
  rules.push(...BUILT_IN_RULES);
  return rules;
}

async function resolveApp(
  apps: AppDirectory,
  request: FastifyRequest,
  appKey: string | undefined,
): Promise<RealtimeApp> {
  const app = appKey === undefined ? apps.defaultApp : await apps.byKey(appKey);
  if (app === undefined)
    throw appKey === undefined ? realtimeErrors.noDefaultApp() : realtimeErrors.appNotFound();
  // The operator feed's app signs for the operator token only (/operator/realtime/auth), whatever
  // channel rules a module or the configuration declares.
  if (app.id === OPERATOR_APP_ID) throw realtimeErrors.appNotFound();
  // An organization's app authorizes only its members, acting in that organization.
  if (app.orgId !== null && requireOrg(request).orgId !== app.orgId) throw realtimeErrors.appNotFound();
  return app;
}

const AuthBody = Type.Object({
  socket_id: Type.String({ pattern: SOCKET_ID.source, maxLength: 40 }),
  channel_name: Type.String({ minLength: 1, maxLength: 200 }),
  app_key: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

const UserAuthBody = Type.Object({
  socket_id: Type.String({ pattern: SOCKET_ID.source, maxLength: 40 }),
  app_key: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
});

/**
 * The authorization endpoints pusher-js calls (`channelAuthorization.endpoint`,
 * `userAuthentication.endpoint`), answered for the signed-in Socle user: a channel is allowed
 * when a module declared a matching pattern whose authorizer says yes.
 */
export function registerAuthRoutes(
  app: HttpServer,
  options: {
    apps: AppDirectory;
    modules: readonly ModuleDefinition[];
    channelRules: readonly RealtimeChannelRule[];
    maxUserInfoBytes: number;
  },
): void {
  const rules = compileChannelRules(options.modules, options.channelRules);
  // Granted authorizations are routine (every page load); refusals are what an admin looks for.
  const config = { audit: 'refusals' as const };
  const tags = ['realtime'];
  // pusher-js posts form-encoded bodies; this parser is scoped to the realtime routes.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string' },
    (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  app.post(
    '/realtime/auth',
    {
      config,
      schema: {
        tags,
        security: routeSecurity.user,
        summary:
          'Authorize the signed-in user to join a private or presence channel (pusher-js channelAuthorization)',
        body: AuthBody,
        response: {
          200: Type.Object({
            auth: Type.String(),
            channel_data: Type.Optional(Type.String()),
            shared_secret: Type.Optional(
              Type.String({
                description: 'private-encrypted- channels: the key events are encrypted with (base64)',
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const { socket_id: socketId, channel_name: channel, app_key: appKey } = request.body;
      const type = channelType(channel);
      if (type === undefined) throw realtimeErrors.invalidChannel(channel);
      const target = await resolveApp(options.apps, request, appKey);
      if (!needsAuthorization(type.kind)) throw realtimeErrors.channelForbidden(channel);
      let allowed: boolean | { userInfo?: unknown } = false;
      for (const rule of rules) {
        const match = rule.regex.exec(channel);
        if (match === null) continue;
        const params = Object.fromEntries(
          rule.names.map((name, index) => [name, match[index + 1] as string]),
        );
        allowed = await rule.authorize(request, params);
        break;
      }
      if (allowed === false) throw realtimeErrors.channelForbidden(channel);
      if (type.kind === 'private') return { auth: channelAuth(target, socketId, channel) };
      if (type.kind === 'encrypted') {
        if (target.encryptionMasterKey === undefined) throw realtimeErrors.noEncryptionKey();
        return {
          auth: channelAuth(target, socketId, channel),
          shared_secret: encryptedChannelKey(channel, target.encryptionMasterKey).toString('base64'),
        };
      }
      const userInfo = typeof allowed === 'object' ? allowed.userInfo : undefined;
      const problem = memberProblem(
        userInfo === undefined ? { userId } : { userId, userInfo },
        options.maxUserInfoBytes,
      );
      if (problem !== undefined) throw realtimeErrors.memberRefused(problem);
      const channelData = JSON.stringify(
        userInfo === undefined ? { user_id: userId } : { user_id: userId, user_info: userInfo },
      );
      return { auth: channelAuth(target, socketId, channel, channelData), channel_data: channelData };
    },
  );

  app.post(
    '/realtime/user-auth',
    {
      config,
      schema: {
        tags,
        security: routeSecurity.user,
        summary: 'Sign the signed-in user in on a socket (pusher-js userAuthentication, pusher:signin)',
        body: UserAuthBody,
        response: { 200: Type.Object({ auth: Type.String(), user_data: Type.String() }) },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      const target = await resolveApp(options.apps, request, request.body.app_key);
      const userData = JSON.stringify({ id: userId });
      return { auth: userAuth(target, request.body.socket_id, userData), user_data: userData };
    },
  );
}
