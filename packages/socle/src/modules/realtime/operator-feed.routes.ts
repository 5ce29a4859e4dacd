import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireOperator, requireUser } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import type { RealtimeApp } from './apps.js';
import { OPERATOR_CHANNEL, orgFeedChannel } from './operator-feed.js';
import { channelAuth, SOCKET_ID } from './protocol.js';
import { realtimeErrors } from './realtime.errors.js';

const FeedBody = Type.Object({
  socket_id: Type.String({ pattern: SOCKET_ID.source, maxLength: 40 }),
  channel_name: Type.String({ minLength: 1, maxLength: 200 }),
});

/**
 * The operator feed for clients holding the operator token (the console): where to connect, and
 * the channel authorization pusher-js asks for (`channelAuthorization.customHandler`). And an
 * organization's feed for its admins' console (`/org/realtime/feed`): the same app, a channel of
 * the organization's own (its job counts, its apps' activity, its payment events), signed only
 * for an admin of that organization, acting in it.
 */
export function registerOperatorFeedRoutes(app: HttpServer, operatorApp: RealtimeApp): void {
  const tags = ['realtime'];
  app.get(
    '/operator/realtime/feed',
    {
      schema: {
        tags,
        summary:
          'Where the operator feed is (operator token): connect with this key to ws(s)://<this host>/app/<key> and subscribe to the channel; it carries `jobs` (job counts, when they change) and `realtime` (apps whose sockets, channels or presence changed)',
        security: routeSecurity.operator,
        response: { 200: Type.Object({ key: Type.String(), channel: Type.String() }) },
      },
    },
    async (request) => {
      requireOperator(request);
      return { key: operatorApp.key, channel: OPERATOR_CHANNEL };
    },
  );
  app.post(
    '/operator/realtime/auth',
    {
      // Granted authorizations are routine (every console load); refusals are what an admin looks for.
      config: { audit: 'refusals' as const },
      schema: {
        tags,
        summary: 'Authorize a socket of the operator app to join the operator channel (operator token)',
        security: routeSecurity.operator,
        body: FeedBody,
        response: { 200: Type.Object({ auth: Type.String() }) },
      },
    },
    async (request) => {
      requireOperator(request);
      const { socket_id: socketId, channel_name: channel } = request.body;
      if (channel !== OPERATOR_CHANNEL) throw realtimeErrors.channelForbidden(channel);
      return { auth: channelAuth(operatorApp, socketId, channel) };
    },
  );
  app.get(
    '/org/realtime/feed',
    {
      schema: {
        tags,
        summary:
          "Where the current organization's feed is (its admins): connect with this key to ws(s)://<this host>/app/<key> and subscribe to the channel; it carries `jobs` (the organization's job counts, when they change), `realtime` (its apps whose sockets, channels or presence changed) and `payments` (its provider events applied or failed)",
        headers: OrgHeaders,
        security: routeSecurity.user,
        response: { 200: Type.Object({ key: Type.String(), channel: Type.String() }) },
      },
    },
    async (request) => {
      requireUser(request);
      const { orgId } = requireOrgRole(request, 'admin');
      return { key: operatorApp.key, channel: orgFeedChannel(orgId) };
    },
  );
  app.post(
    '/org/realtime/feed/auth',
    {
      config: { audit: 'refusals' as const },
      schema: {
        tags,
        summary:
          "Authorize a socket of the operator app to join the current organization's feed channel (an admin of it; another organization's channel is refused)",
        headers: OrgHeaders,
        security: routeSecurity.user,
        body: FeedBody,
        response: { 200: Type.Object({ auth: Type.String() }) },
      },
    },
    async (request) => {
      // A signed-in admin, not an API key: the feed is the console's, a person's screen.
      requireUser(request);
      const { orgId } = requireOrgRole(request, 'admin');
      const { socket_id: socketId, channel_name: channel } = request.body;
      if (channel !== orgFeedChannel(orgId)) throw realtimeErrors.channelForbidden(channel);
      return { auth: channelAuth(operatorApp, socketId, channel) };
    },
  );
}
