/** CPU time of another process (`/proc/<pid>/stat`): Socle's own reader, shared with socle bench --calibrate. */
export { processCpuSeconds } from 'socle/testing';
