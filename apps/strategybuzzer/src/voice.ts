import { createHmac } from 'node:crypto';
import { type Logger, type Realtime, SocleError } from 'socle';
import { channels } from './buzzer.service.js';

/** A TURN/STUN server entry as `RTCPeerConnection({ iceServers })` takes it. */
export interface IceServer {
  readonly urls: readonly string[];
  readonly username?: string;
  readonly credential?: string;
}

/**
 * Short-lived TURN credentials in coTURN's REST API scheme (`use-auth-secret` with
 * `static-auth-secret`): the username is `expiry:userId` (expiry in Unix seconds), the password
 * `base64(HMAC-SHA1(secret, username))`. coTURN recomputes the HMAC with the same secret and
 * refuses a username whose expiry has passed, so nothing is stored and a leaked credential dies
 * with its expiry; each player gets their own (never one shared password).
 */
export function turnCredentials(
  secret: string,
  userId: string,
  options: { readonly nowSeconds: number; readonly ttlSeconds: number },
): { readonly username: string; readonly credential: string; readonly expiresAt: number } {
  const expiresAt = Math.floor(options.nowSeconds) + options.ttlSeconds;
  const username = `${expiresAt}:${userId}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential, expiresAt };
}

const SIGNAL_KINDS = new Set(['offer', 'answer', 'ice']);
/** An SDP offer with many candidates stays under this; anything larger is not signalling. */
const MAX_SIGNAL_BYTES = 16 * 1024;

const voiceErrors = {
  full: (max: number) =>
    new SocleError(
      'strategybuzzer.voice_full',
      `Voice holds ${max} players at most (every player sends to every other: a mesh)`,
      { status: 409, details: { max } },
    ),
  notInVoice: () =>
    new SocleError('strategybuzzer.not_in_voice', 'Both players must have joined the voice of this room', {
      status: 409,
    }),
  badSignal: (why: string) => new SocleError('strategybuzzer.invalid_signal', why, { status: 400 }),
};

export interface VoiceOptions {
  readonly realtime: Realtime;
  readonly log: Logger;
  /** The room the player sits in now among the rooms hosted on this node (the host's seats). */
  readonly roomOf: (userId: string) => string | undefined;
  /** Players in one room's voice at most: a mesh of peer connections carries 4–5. */
  readonly maxPeers: number;
}

/**
 * Voice in a room: WebRTC peer connections between the players (a mesh), signalled through the
 * server, on the node hosting the room (the game forwards the events there). A player's socket sends `client-voice-join`, `client-voice-signal { to, kind, data }`
 * and `client-voice-leave` on its own private channel; the server checks both ends sit in the
 * room's voice and relays the signal to the other player's private channel as `voice-signal
 * { from, kind, data }`, so `from` is who the server authenticated (a client cannot speak as
 * another) and SDP and ICE candidates (addresses) reach only the peer they are for.
 */
export function createVoice({ realtime, log, roomOf, maxPeers }: VoiceOptions) {
  /** Who is in each room's voice, in joining order. */
  const voices = new Map<string, string[]>();

  const tell = (userId: string, event: string, data: unknown) =>
    realtime
      .publish({ channel: channels.player(userId), event, data })
      .catch((error) => log.warn({ err: error, userId }, 'Voice message could not be published'));

  function seatedIn(userId: string, roomId: string): void {
    if (roomOf(userId) !== roomId)
      throw new SocleError('strategybuzzer.not_in_room', 'You are not playing in this room', { status: 404 });
  }

  /** Drops players who left the room (their seat went) from its voice. */
  function prune(roomId: string): string[] {
    const members = (voices.get(roomId) ?? []).filter((userId) => roomOf(userId) === roomId);
    if (members.length === 0) voices.delete(roomId);
    else voices.set(roomId, members);
    return members;
  }

  const voice = {
    maxPeers,

    /** Joins the room's voice: the player gets who is there (to offer to), the others are told. */
    async join(userId: string, roomId: string): Promise<string[]> {
      seatedIn(userId, roomId);
      const members = prune(roomId);
      if (members.includes(userId)) return members.filter((member) => member !== userId);
      if (members.length >= maxPeers) throw voiceErrors.full(maxPeers);
      voices.set(roomId, [...members, userId]);
      await Promise.all(members.map((member) => tell(member, 'voice-joined', { roomId, userId })));
      return members;
    },

    async leave(userId: string, roomId: string): Promise<void> {
      const members = voices.get(roomId) ?? [];
      if (!members.includes(userId)) return;
      const rest = members.filter((member) => member !== userId);
      if (rest.length === 0) voices.delete(roomId);
      else voices.set(roomId, rest);
      await Promise.all(rest.map((member) => tell(member, 'voice-left', { roomId, userId })));
    },

    /** Relays an offer, answer or ICE candidate to one peer of the room's voice. */
    async signal(userId: string, roomId: string, to: unknown, kind: unknown, data: unknown): Promise<void> {
      seatedIn(userId, roomId);
      if (typeof kind !== 'string' || !SIGNAL_KINDS.has(kind))
        throw voiceErrors.badSignal('kind is offer, answer or ice');
      if (typeof to !== 'string' || to === userId) throw voiceErrors.badSignal('to names another player');
      if (data === undefined || JSON.stringify(data).length > MAX_SIGNAL_BYTES)
        throw voiceErrors.badSignal(`data is an SDP or a candidate of at most ${MAX_SIGNAL_BYTES} bytes`);
      const members = prune(roomId);
      if (!members.includes(userId) || !members.includes(to)) throw voiceErrors.notInVoice();
      await tell(to, 'voice-signal', { roomId, from: userId, kind, data });
    },

    /** Who is in the room's voice now. */
    members: (roomId: string) => prune(roomId),

    /**
     * A player's `client-voice-*` event (sent on their own channel), on the room's host: the game
     * forwards it there from whichever node holds the socket, so one node keeps a room's voice.
     */
    async onRoomEvent(userId: string, event: string, raw: string): Promise<void> {
      let data: Record<string, unknown> = {};
      try {
        data = JSON.parse(raw) ?? {};
      } catch {
        // not JSON: answered below as a bad signal
      }
      const roomId = typeof data.roomId === 'string' ? data.roomId : '';
      try {
        if (event === 'client-voice-join')
          await tell(userId, 'voice-peers', { roomId, peers: await voice.join(userId, roomId) });
        else if (event === 'client-voice-leave') await voice.leave(userId, roomId);
        else if (event === 'client-voice-signal')
          await voice.signal(userId, roomId, data.to, data.kind, data.data);
      } catch (error) {
        const code = (error as { code?: string }).code ?? 'strategybuzzer.failed';
        if (!code.startsWith('strategybuzzer.')) log.error({ err: error, event }, 'Voice failed');
        await tell(userId, 'error', { event, code, message: (error as Error).message });
      }
    },
  };
  return voice;
}

export type Voice = ReturnType<typeof createVoice>;
