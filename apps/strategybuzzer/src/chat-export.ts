import { Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { type Clock, defineBucket, type FilesServices, type Logger } from 'socle';
import type { BuzzerStore, ChatMessage } from './buzzer.store.js';
import type { BuzzerTables } from './buzzer.tables.js';

/**
 * Old chat, kept cold: gzip-compressed NDJSON (one message a line) in the organization that runs
 * the game, moved to the archive storage class after 30 days. A record archive (Socle's files
 * `recordArchive`): each object names the players whose messages it holds, a player's privacy
 * export includes their archived messages, and their erasure rewrites each archive without them
 * (the objects stay the organization's: the other players' messages are still theirs to keep).
 */
export const chatArchiveBucket = defineBucket({
  name: 'sb-chat-archive',
  maxBytes: 1024 * 1024 * 1024,
  allowedTypes: ['application/gzip'],
  scope: 'tenant',
  public: false,
  lifecycle: { archiveAfterDays: 30 },
  keepOnErase: true,
  recordArchive: { subjectField: 'userId' },
});

/** Messages per archive object: one object per run of this many (a day of a busy game is several). */
export const CHAT_EXPORT_BATCH = 10_000;

export interface ChatExportOptions {
  readonly files: FilesServices;
  readonly store: BuzzerStore;
  readonly clock: Clock;
  readonly log: Logger;
  readonly retentionDays: number;
  readonly batch?: number;
}

const line = (message: ChatMessage) =>
  `${JSON.stringify({
    id: message.id,
    roomId: message.roomId,
    userId: message.userId,
    name: message.name,
    body: message.body,
    createdAt: new Date(message.createdAt).toISOString(),
  })}\n`;

/**
 * The nightly export: chat older than the retention is written to object storage, then deleted
 * from Postgres **in the transaction that records the archive object** (the files module's
 * `attach`): both happen or neither. A crash before that commit leaves the messages in place and
 * an unreachable blob the files module's cleanup removes; the next run exports them again. Without
 * an organization running the game there is nowhere to export to, and nothing is deleted.
 */
export function createChatExport({
  files,
  store,
  clock,
  log,
  retentionDays,
  batch = CHAT_EXPORT_BATCH,
}: ChatExportOptions) {
  return {
    /** Exports and deletes what is past the retention; how many messages. */
    async run(): Promise<{ exported: number; objects: string[] }> {
      const house = await store.house();
      const cutoff = new Date(clock.now().getTime() - retentionDays * 24 * 3600 * 1000);
      if (house === undefined) {
        log.warn('No organization runs the game: old chat is kept until one does (nowhere to export it)');
        return { exported: 0, objects: [] };
      }
      let exported = 0;
      const objects: string[] = [];
      for (;;) {
        const messages = await store.chatBefore(cutoff, batch);
        if (messages.length === 0) break;
        const first = messages[0] as ChatMessage;
        const last = messages[messages.length - 1] as ChatMessage;
        const name = `chat-${new Date(first.createdAt).toISOString()}-${new Date(last.createdAt).toISOString()}.ndjson.gz`;
        const body = Readable.from(messages.map(line)).pipe(createGzip());
        const { object } = await files.upload<number, BuzzerTables>(
          {
            bucket: chatArchiveBucket.name,
            tenantId: house.orgId,
            body,
            name,
            metadata: { messages: messages.length, from: first.createdAt, to: last.createdAt },
            subjects: messages.map((message) => message.userId),
          },
          (trx) =>
            store.deleteChat(
              trx,
              messages.map((message) => message.id),
            ),
        );
        exported += messages.length;
        objects.push(object.id);
        if (messages.length < batch) break;
      }
      return { exported, objects };
    },
  };
}

export type ChatExport = ReturnType<typeof createChatExport>;
