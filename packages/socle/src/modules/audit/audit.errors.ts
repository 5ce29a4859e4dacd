import { SocleError } from '../../kernel/index.js';

/** Errors of the audit log: stable codes clients branch on. */
export const auditErrors = {
  invalidCursor: () =>
    new SocleError('audit.invalid_cursor', 'The cursor is not one this list returned', {
      status: 400,
      errors: [{ field: 'query/cursor', message: 'is not a cursor returned by this list' }],
    }),
};
