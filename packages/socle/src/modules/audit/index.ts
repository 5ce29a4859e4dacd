/** The audit module: an append-only log of every mutating request, listed by org admins. */
export {
  type AuditModule,
  type AuditOptions,
  type AuditServices,
  createAuditModule,
} from './audit.module.js';
export type { AuditEvent, AuditEventPage, AuditEventQuery } from './audit.service.js';
export type { AuditTables } from './audit.tables.js';
