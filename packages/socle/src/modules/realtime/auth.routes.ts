import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../kernel/http/index.js';
import type { ChannelAuthorizer, ModuleDefinition } from '../../kernel/modules/index.js';
import { requireUser } from '../identity/index.js';
import { requireOrg } from '../tenancy/index.js';
import type { AppDirectory, RealtimeApp } from './apps.js';
import {
  channelAuth,
  channelType,
  encryptedChannelKey,
  needsAuthorization,
  SOCKET_ID,
  userAuth,
} from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';

/** A channel pattern declared by a module, compiled: `presence-quiz-{roomId}` → a regular expression. */
interface ChannelRule {
  readonly pattern: string;
  readonly regex: RegExp;
  readonly names: readonly string[];
  readonly authorize: ChannelAuthorizer;
}

/** Compiles every module's `channels` patterns; placeholders match one or more non-empty characters but `-`-free only when the pattern says so. */
export function compileChannelRules(modules: readonly ModuleDefinition[]): ChannelRule[] {
  const rules: ChannelRule[] = [];
  for (const module of modules) {
    for (const [pattern, authorize] of Object.entries(module.channels ?? {})) {
      const names: string[] = [];
      const source = pattern
        .split(/(\{[a-zA-Z_][a-zA-Z0-9_]*\})/)
        .map((part) => {
          if (part.startsWith('{') && part.endsWith('}')) {
            names.push(part.slice(1, -1));
            return '([-a-zA-Z0-9_=@,.;]+)';
          }
          return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
        })
        .join('');
      rules.push({ pattern, regex: new RegExp(`^${source}$`), names, authorize });
    }
  }
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
  options: { apps: AppDirectory; modules: readonly ModuleDefinition[] },
): void {
  const rules = compileChannelRules(options.modules);
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
      const channelData = JSON.stringify(
        userInfo === undefined ? { user_id: userId } : { user_id: userId, user_info: userInfo },
      );
      return { auth: channelAuth(target, socketId, channel, channelData), channel_data: channelData };
    },
  );

  app.post(
    '/realtime/user-auth',
    {
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
