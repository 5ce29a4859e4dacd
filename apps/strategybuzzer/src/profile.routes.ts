import {
  type FilesServices,
  type HttpServer,
  requireUser,
  routeSecurity,
  type Transaction,
  Type,
} from 'socle';
import type { BuzzerService } from './buzzer.service.js';
import type { BuzzerTables } from './buzzer.tables.js';
import { avatarBucket, type Profiles } from './profile.js';

const tags = ['strategybuzzer'];
const security = routeSecurity.user;

/** Player profiles and the avatar upload (the image's bytes as the body: the files module's upload route). */
export function registerProfileRoutes(
  app: HttpServer,
  deps: { profiles: Profiles; service: BuzzerService; files: FilesServices },
): void {
  const { profiles, service, files } = deps;

  app.get(
    '/strategybuzzer/players/:userId',
    {
      schema: {
        tags,
        security,
        summary: "A player's profile: stats, this week's scores, recent games, avatar links (64 and 256 px)",
        params: Type.Object({ userId: Type.String({ format: 'uuid' }) }),
      },
    },
    async (request) => {
      requireUser(request);
      return profiles.profile(request.params.userId);
    },
  );

  files.uploadRoute(app, {
    method: 'PUT',
    url: '/strategybuzzer/me/avatar',
    schema: {
      tags,
      security,
      summary:
        'My avatar: the body is a PNG, JPEG or WebP image (5 MB at most; its type is read from its bytes)',
    },
    bucket: avatarBucket.name,
    authorize: async (request) => {
      const { userId } = requireUser(request);
      await service.profile(userId);
      return { userId };
    },
    name: () => 'avatar',
    attach: (trx: Transaction<BuzzerTables>, object) => profiles.attachAvatar(trx, object),
    reply: async ({ object, attached: previous }) => ({
      avatar: await profiles.avatarReplaced(object, previous),
    }),
  });
}
