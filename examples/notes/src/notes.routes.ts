import { type HttpServer, OrgHeaders, requireOrgRole, routeSecurity, Type } from 'socle';
import type { NoteService } from './notes.service.js';
import type { Note as StoredNote } from './notes.store.js';

const Note = Type.Object({
  id: Type.String({ format: 'uuid' }),
  authorId: Type.String({ format: 'uuid' }),
  body: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});

const present = (note: StoredNote) => ({ ...note, createdAt: note.createdAt.toISOString() });

/**
 * Thin routes: schema → service call → reply. The schema refuses bad input with a 400 naming the
 * field before the handler runs; `requireOrgRole` checks the caller (a signed-in member, or an
 * API key of the organization) and gives the organization to act in.
 */
export function registerNoteRoutes(app: HttpServer, notes: NoteService): void {
  const tags = ['notes'];
  const security = routeSecurity.memberOrApiKey;

  app.post(
    '/notes',
    {
      schema: {
        tags,
        security,
        summary: 'Write a note in the current organization (member)',
        headers: OrgHeaders,
        body: Type.Object(
          { body: Type.String({ minLength: 1, maxLength: 10_000 }) },
          { additionalProperties: false },
        ),
        response: { 201: Note },
      },
    },
    async (request, reply) => {
      const org = requireOrgRole(request, 'member');
      return reply.code(201).send(present(await notes.write(org, request.body.body)));
    },
  );

  app.get(
    '/notes',
    {
      schema: {
        tags,
        security,
        summary: "The current organization's notes, oldest first (viewer)",
        headers: OrgHeaders,
        response: { 200: Type.Object({ notes: Type.Array(Note) }) },
      },
    },
    async (request) => ({ notes: (await notes.list(requireOrgRole(request, 'viewer'))).map(present) }),
  );

  app.delete(
    '/notes/:id',
    {
      schema: {
        tags,
        security,
        summary: 'Delete a note (member); the daily purge removes it for good later',
        headers: OrgHeaders,
        params: Type.Object({ id: Type.String({ format: 'uuid' }) }),
      },
    },
    async (request, reply) => {
      await notes.remove(requireOrgRole(request, 'member'), request.params.id);
      return reply.code(204).send();
    },
  );
}
