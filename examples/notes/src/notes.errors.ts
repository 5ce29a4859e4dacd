import { SocleError } from 'socle';

/**
 * The module's errors: stable codes `notes.<reason>`, rendered as problem+json by Socle's one
 * error handler. Services throw these; routes never build HTTP answers themselves.
 */
export const notesErrors = {
  notFound: (id: string) =>
    new SocleError('notes.not_found', `No note ${id} in this organization`, { status: 404, details: { id } }),
};
