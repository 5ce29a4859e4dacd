import { type HttpServer, Type } from 'socle';
import type { Leaderboard } from './leaderboard.js';

/** `GET /strategybuzzer/leaderboard`: global or weekly, in cursor pages. */
export function registerLeaderboardRoutes(app: HttpServer, deps: { leaderboard: Leaderboard }): void {
  app.get(
    '/strategybuzzer/leaderboard',
    {
      schema: {
        tags: ['strategybuzzer'],
        summary:
          'Players with the most points, all time (`global`) or this week (`week`, from Monday UTC), in pages',
        querystring: Type.Object(
          {
            period: Type.Union([Type.Literal('global'), Type.Literal('week')], { default: 'global' }),
            limit: Type.Integer({ minimum: 1, maximum: 100, default: 20 }),
            cursor: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
          },
          { additionalProperties: false },
        ),
      },
    },
    async (request) => deps.leaderboard.page(request.query.period, request.query.limit, request.query.cursor),
  );
}
