import { type Clock, type HttpServer, requireUser, routeSecurity } from 'socle';
import { buzzerErrors } from './buzzer.errors.js';
import type { BuzzerService } from './buzzer.service.js';
import type { BuzzerSettings } from './buzzer.settings.js';
import { type IceServer, turnCredentials } from './voice.js';

/** The ICE servers a seated player's `RTCPeerConnection` uses, with their own short-lived TURN credentials. */
export function registerVoiceRoutes(
  app: HttpServer,
  deps: { service: BuzzerService; settings: BuzzerSettings; clock: Clock },
): void {
  const { service, settings, clock } = deps;

  app.get(
    '/strategybuzzer/voice/credentials',
    {
      schema: {
        tags: ['strategybuzzer'],
        security: routeSecurity.user,
        summary:
          "ICE servers for the room's voice: TURN credentials of mine in coTURN's REST scheme (expiry:userId, HMAC-SHA1), short-lived",
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      // Only a seated player relays through TURN (its bandwidth is the operator's).
      if ((await service.roomOf(userId)) === undefined) throw buzzerErrors.notInRoom();
      const urls = settings.turnUrls;
      if (settings.turnSecret === undefined || urls.length === 0)
        return {
          iceServers: urls.length === 0 ? [] : [{ urls }],
          expiresAt: null,
          maxPeers: settings.voiceMaxPeers,
        };
      const { username, credential, expiresAt } = turnCredentials(settings.turnSecret, userId, {
        nowSeconds: clock.now().getTime() / 1000,
        ttlSeconds: settings.turnTtlSeconds,
      });
      const iceServers: IceServer[] = [{ urls, username, credential }];
      return {
        iceServers,
        expiresAt: new Date(expiresAt * 1000).toISOString(),
        maxPeers: settings.voiceMaxPeers,
      };
    },
  );
}
