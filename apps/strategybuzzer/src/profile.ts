import {
  type Clock,
  defineBucket,
  type FileObject,
  type FilesServices,
  SocleError,
  type Transaction,
} from 'socle';
import type { BuzzerStore } from './buzzer.store.js';
import type { BuzzerTables } from './buzzer.tables.js';
import { weekStart } from './leaderboard.js';
import type { LeaderboardStore } from './leaderboard.store.js';

/**
 * Players' avatars: one person's images (a per-user bucket), sniffed on their bytes (PNG, JPEG,
 * WebP; 5 MB at most). Shown through signed image variants (64 and 256 px WebP, EXIF stripped,
 * rendered once and cached by the files module), never the original.
 */
export const avatarBucket = defineBucket({
  name: 'sb-avatars',
  maxBytes: 5 * 1024 * 1024,
  allowedTypes: ['image/png', 'image/jpeg', 'image/webp'],
  scope: 'user',
  public: false,
  keepOnErase: false,
});

/** How long an avatar link works; profiles are read again long before. */
const AVATAR_LINK_SECONDS = 24 * 3600;

export interface ProfilesOptions {
  readonly files: FilesServices;
  readonly store: BuzzerStore;
  readonly leaderboardStore: LeaderboardStore;
  readonly clock: Clock;
}

const playerNotFound = (userId: string) =>
  new SocleError('strategybuzzer.player_not_found', 'No player with this id', {
    status: 404,
    details: { field: 'params/userId', userId },
  });

/** Player profiles: stats, this week's scores, recent games, the avatar. */
export function createProfiles({ files, store, leaderboardStore, clock }: ProfilesOptions) {
  const avatarLinks = (object: FileObject) => {
    const link = (size: number) =>
      files.variants.variantUrl(
        object,
        { width: size, height: size, fit: 'cover', format: 'webp' },
        { expiresInSeconds: AVATAR_LINK_SECONDS },
      ).url;
    return { small: link(64), large: link(256) };
  };

  return {
    /**
     * In the transaction that records the new avatar: points the player's profile at it (the
     * row locked, so two uploads at once cannot both keep the old one); the previous avatar's id.
     * Refusals (415 not an image, 413 too large) never get here: the old avatar stays.
     */
    async attachAvatar(trx: Transaction<BuzzerTables>, object: FileObject): Promise<string | null> {
      const userId = object.ownerId as string;
      const row = await trx
        .selectFrom('strategybuzzer.players')
        .select('avatar_object_id')
        .where('user_id', '=', userId)
        .forUpdate()
        .executeTakeFirst();
      await trx
        .updateTable('strategybuzzer.players')
        .set({ avatar_object_id: object.id })
        .where('user_id', '=', userId)
        .execute();
      return row?.avatar_object_id ?? null;
    },

    /** Once the new avatar is committed: deletes the previous one; the new one's links. */
    async avatarReplaced(object: FileObject, previous: string | null) {
      if (previous !== null && previous !== object.id)
        await files
          .delete({ userId: object.ownerId as string }, avatarBucket.name, previous)
          .catch(() => false);
      return avatarLinks(object);
    },

    /** A player's public profile: anyone signed in may read it. */
    async profile(userId: string) {
      const player = await store.player(userId);
      if (player === undefined) throw playerNotFound(userId);
      // The avatar is the player's own object: read as them (its row is under their RLS).
      const avatar =
        player.avatarObjectId === null
          ? undefined
          : await files.find({ userId }, avatarBucket.name, player.avatarObjectId);
      return {
        userId: player.userId,
        name: player.name,
        level: player.level,
        stats: {
          games: player.games,
          wins: player.wins,
          points: player.points,
          bestStreak: player.bestStreak,
          winRate: player.games === 0 ? 0 : Math.round((player.wins / player.games) * 1000) / 1000,
        },
        week: {
          start: weekStart(clock.now()),
          ...(await leaderboardStore.weekOf(userId, weekStart(clock.now()))),
        },
        recentGames: await store.gamesOf(userId, 10),
        avatar: avatar === undefined ? null : avatarLinks(avatar),
      };
    },
  };
}

export type Profiles = ReturnType<typeof createProfiles>;
