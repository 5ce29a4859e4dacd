import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';
import type { Clock, SecretBox } from 'socle';
import { cryptocareErrors } from './cryptocare.errors.js';
import type { NoteStore } from './notes.store.js';

const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * Consultation notes sealed at rest with a key per practice (envelope encryption): each
 * organization has a random AES-256 key, itself sealed with Socle's secret box (`SECRET_KEY`,
 * rotated by `socle secrets reseal`), and each note is AES-256-GCM under it with the note's id as
 * associated data (a sealed body copied onto another note does not open). Deleting the practice
 * deletes its key. Every read is logged (who, when) in the transaction that reads.
 */
export function createNoteService(options: { store: NoteStore; secrets: SecretBox; clock: Clock }) {
  const { store, secrets, clock } = options;
  const keyContext = (orgId: string) => `cryptocare.organization-key:${orgId}`;

  async function keyOf(orgId: string, userId: string): Promise<Buffer> {
    const sealed = await store.organizationKey(
      orgId,
      userId,
      () => secrets.seal(randomBytes(32).toString('base64'), keyContext(orgId)),
      clock.now(),
    );
    return Buffer.from(secrets.open(sealed, keyContext(orgId)), 'base64');
  }

  return {
    async write(acting: { orgId: string; userId: string }, appointmentId: string, body: string) {
      const key = await keyOf(acting.orgId, acting.userId);
      const id = randomUUID();
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv).setAAD(Buffer.from(id));
      const sealed = Buffer.concat([iv, cipher.update(body, 'utf8'), cipher.final(), cipher.getAuthTag()]);
      const createdAt = clock.now();
      const stored = await store.insert(acting.orgId, {
        id,
        appointmentId,
        authorId: acting.userId,
        sealedBody: sealed.toString('base64'),
        createdAt,
      });
      if (!stored) throw cryptocareErrors.appointmentNotFound(appointmentId);
      return { id, appointmentId, authorId: acting.userId, body, createdAt };
    },

    async read(acting: { orgId: string; userId: string }, appointmentId: string) {
      const key = await keyOf(acting.orgId, acting.userId);
      const notes = await store.readAll(acting.orgId, acting.userId, appointmentId, clock.now());
      return notes.map((note) => {
        const sealed = Buffer.from(note.sealedBody, 'base64');
        const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_BYTES)).setAAD(
          Buffer.from(note.id),
        );
        decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
        const body = Buffer.concat([
          decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
          decipher.final(),
        ]).toString('utf8');
        return {
          id: note.id,
          appointmentId: note.appointmentId,
          authorId: note.authorId,
          body,
          createdAt: note.createdAt,
        };
      });
    },

    reads: (acting: { orgId: string; userId: string }, noteId: string) =>
      store.reads(acting.orgId, acting.userId, noteId),
  };
}

export type NoteService = ReturnType<typeof createNoteService>;
