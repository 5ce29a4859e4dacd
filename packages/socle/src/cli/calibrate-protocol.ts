/** What `socle bench --calibrate` and the server child it starts (calibrate-child.ts) exchange. */

/** The child's settings, in the environment variable SOCLE_CALIBRATION_CHILD (JSON). */
export interface CalibrationChildSettings {
  /** Embedded PGlite's directory (a temporary one), also the data directory with Postgres. */
  readonly dataDir: string;
  /** The throwaway Postgres database, or undefined for embedded PGlite. */
  readonly databaseUrl: string | undefined;
  /** Accounts to sign up: the sign-in phase cycles through them. */
  readonly users: number;
  /** The blob store of the file upload phase (`BLOB_URL`, an S3 bucket, say); undefined: a local directory. */
  readonly blobUrl: string | undefined;
}

/** Tenant rows seeded for the organization the read and write phases act in. */
export const CALIBRATION_ITEMS = 1000;
/** The calibration accounts' password: passes the strength policy, used on a throwaway database only. */
export const CALIBRATION_PASSWORD = 'quartz-lantern-hollow-91-meadow';
export const calibrationEmail = (index: number) => `calibration-${index}@example.com`;
/** The bucket the file upload phase uploads to. */
export const CALIBRATION_BUCKET = 'calibration';
/** Bytes of each upload of the file upload phase (1 MiB). */
export const CALIBRATION_UPLOAD_BYTES = 2 ** 20;
/** At most this many uploads per phase, so a long phase on a fast disk stays bounded (1 GiB). */
export const CALIBRATION_MAX_UPLOADS = 1024;
/** The realtime app the realtime phase connects to (a throwaway server: its secret is nobody's). */
export const CALIBRATION_REALTIME_KEY = 'calibration-key';
/** The public channel every socket of the realtime phase joins and the server publishes to. */
export const CALIBRATION_CHANNEL = 'calibration';
/** The event the server publishes there. */
export const CALIBRATION_EVENT = 'tick';

export type CalibrationParentMessage =
  /** Asks the child for the CPU it has used so far. */
  | { readonly type: 'cpu'; readonly id: number }
  /** Asks the child to enqueue and process batches of no-op jobs for `seconds`. */
  | { readonly type: 'jobs'; readonly seconds: number; readonly batch: number }
  /** Asks the child for its resident memory, after a garbage collection. */
  | { readonly type: 'memory'; readonly id: number }
  /** Asks the child to publish to {@link CALIBRATION_CHANNEL} for `seconds`, `concurrency` at a time. */
  | { readonly type: 'publish'; readonly seconds: number; readonly concurrency: number };

export type CalibrationChildMessage =
  | { readonly type: 'ready'; readonly url: string; readonly headers: Readonly<Record<string, string>> }
  | { readonly type: 'cpu'; readonly id: number; readonly micros: number }
  | {
      readonly type: 'jobs-done';
      readonly jobs: number;
      readonly cpuMicros: number;
      readonly elapsedMs: number;
    }
  | {
      readonly type: 'memory';
      readonly id: number;
      readonly rssBytes: number;
      /** JS heap in use plus memory outside it (buffers), after garbage collection. */
      readonly heldBytes: number;
    }
  | {
      readonly type: 'publish-done';
      readonly messages: number;
      readonly cpuMicros: number;
      readonly elapsedMs: number;
    }
  | { readonly type: 'failed'; readonly message: string };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null;

export const isCalibrationParentMessage = (value: unknown): value is CalibrationParentMessage =>
  isObject(value) && ['cpu', 'jobs', 'memory', 'publish'].includes(String(value.type));

export const isCalibrationChildMessage = (value: unknown): value is CalibrationChildMessage =>
  isObject(value) &&
  ['ready', 'cpu', 'jobs-done', 'memory', 'publish-done', 'failed'].includes(String(value.type));
