import type { Readable } from 'node:stream';
import { type HttpServer, requireUser, routeSecurity, Type } from 'socle';
import type { BuzzerService } from './buzzer.service.js';
import type { Profiles } from './profile.js';

const tags = ['strategybuzzer'];
const security = routeSecurity.user;
const single = (value: string | string[] | undefined) => (Array.isArray(value) ? value[0] : value);

/** Player profiles and the avatar upload (the image's bytes as the body, streamed to the files module). */
export function registerProfileRoutes(
  app: HttpServer,
  deps: { profiles: Profiles; service: BuzzerService },
): void {
  const { profiles, service } = deps;

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

  app.register(async (plugin) => {
    const scope = plugin as unknown as HttpServer;
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, payload, done) => done(null, payload));
    scope.put(
      '/strategybuzzer/me/avatar',
      {
        schema: {
          tags,
          security,
          summary:
            'My avatar: the body is a PNG, JPEG or WebP image (5 MB at most; its type is read from its bytes)',
        },
      },
      async (request, reply) => {
        const { userId } = requireUser(request);
        await service.profile(userId);
        const length = single(request.headers['content-length']);
        const type = single(request.headers['content-type']);
        try {
          const avatar = await profiles.setAvatar(userId, {
            body: (request.body as Readable | undefined) ?? request.raw,
            ...(type === undefined ? {} : { declaredType: type }),
            ...(length === undefined ? {} : { declaredLength: Number(length) }),
          });
          return { avatar };
        } catch (error) {
          // The rest of a refused body is not read: close the connection rather than drain it.
          if (!request.raw.readableEnded) reply.header('connection', 'close');
          throw error;
        }
      },
    );
  });
}
