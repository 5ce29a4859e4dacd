import { type HttpServer, requireUser, Type } from 'socle';
import type { NoteService } from './notes.service.js';
import type { Note as StoredNote } from './notes.store.js';

const Note = Type.Object({
  id: Type.String({ format: 'uuid' }),
  body: Type.String(),
  createdAt: Type.String({ format: 'date-time' }),
});

const present = (note: StoredNote) => ({ ...note, createdAt: note.createdAt.toISOString() });

/** Thin routes: schema, service call, reply. Bad input gets a 400 naming the field. */
export function registerNoteRoutes(app: HttpServer, notes: NoteService): void {
  app.post(
    '/notes',
    {
      schema: {
        tags: ['notes'],
        summary: 'Write a note',
        body: Type.Object(
          { body: Type.String({ minLength: 1, maxLength: 10_000 }) },
          { additionalProperties: false },
        ),
        response: { 201: Note },
      },
    },
    async (request, reply) => {
      const { userId } = requireUser(request);
      return reply.code(201).send(present(await notes.write(userId, request.body.body)));
    },
  );

  app.get(
    '/notes',
    {
      schema: {
        tags: ['notes'],
        summary: 'Your notes, oldest first',
        response: { 200: Type.Object({ notes: Type.Array(Note) }) },
      },
    },
    async (request) => ({ notes: (await notes.listOf(requireUser(request).userId)).map(present) }),
  );
}
