/**
 * CPU time of the Postgres backends serving one database (the server runs on this machine):
 * Socle's own reader, shared with `socle bench --calibrate`.
 */
export { type DatabaseCpu, openDatabaseCpu } from 'socle/testing';
