import { createHash } from 'node:crypto';
import type { SendOptions } from 'pg-boss';
import { Compile, type Validator } from 'typebox/compile';
import type { RequestScope } from '../context/index.js';
import type { FieldError } from '../errors/index.js';
import { isAttemptCount, type JobBackoff, type JobDefinition } from './job-definition.js';
import { DEFAULT_MAX_ATTEMPTS, DEFAULT_TIMEOUT_MS, type Envelope } from './job-runner.js';
import { jobErrors } from './jobs.errors.js';
import type { EnqueueOptions } from './jobs.js';

const DEFAULT_BACKOFF: JobBackoff = { initialDelayMs: 1000 };
/** Finished and dead jobs are kept this long (listable, retryable), then deleted by maintenance. */
const KEEP_FINISHED_SECONDS = 30 * 24 * 3600;

/** The retry, lease and retention options of a job definition's rows. */
function sendOptionsFor(definition: JobDefinition): SendOptions {
  const backoff = definition.backoff ?? DEFAULT_BACKOFF;
  const timeoutSeconds = Math.ceil((definition.timeoutMs ?? DEFAULT_TIMEOUT_MS) / 1000);
  return {
    priority: definition.priority ?? 0,
    retryLimit: (definition.maxAttempts ?? DEFAULT_MAX_ATTEMPTS) - 1,
    ...(backoff === false
      ? { retryDelay: 0, retryBackoff: false }
      : {
          retryDelay: Math.max(1, Math.round(backoff.initialDelayMs / 1000)),
          retryBackoff: true,
          ...(backoff.maxDelayMs === undefined
            ? {}
            : { retryDelayMax: Math.max(1, Math.round(backoff.maxDelayMs / 1000)) }),
        }),
    // The lease: a job whose worker died becomes runnable again this long after it started.
    expireInSeconds: timeoutSeconds + 1,
    deleteAfterSeconds: KEEP_FINISHED_SECONDS,
  };
}

/** The row of one job as pg-boss inserts it. */
export type JobRow = SendOptions & { readonly data: Envelope; readonly priority: number };

/** How the engine turns an enqueue into rows: payload checks and the rows themselves. */
export interface JobRows {
  /**
   * What is wrong with a payload (fields named `<prefix>/…`), or undefined when it matches the
   * job's schema, compiled on the job's first enqueue.
   */
  payloadErrors(
    name: string,
    definition: JobDefinition,
    payload: unknown,
    prefix: string,
  ): FieldError[] | undefined;
  /**
   * The row of one job as pg-boss inserts it: the envelope (payload, the scope's tenant and user,
   * the priority) and the send options of its definition.
   */
  jobRow(
    name: string,
    definition: JobDefinition,
    payload: unknown,
    options: EnqueueOptions,
    current: RequestScope | undefined,
  ): JobRow;
}

/** The rows of the jobs of `definitions`, with each definition's send options computed once. */
export function createJobRows(definitions: ReadonlyMap<string, JobDefinition>): JobRows {
  const validators = new Map<string, Validator | null>();
  const sendOptions = new Map(
    [...definitions].map(([name, definition]) => [name, Object.freeze(sendOptionsFor(definition))]),
  );

  return {
    payloadErrors(name, definition, payload, prefix) {
      let validator = validators.get(name);
      if (validator === undefined) {
        validator = definition.schema === undefined ? null : Compile(definition.schema);
        validators.set(name, validator);
      }
      if (validator === null) {
        return payload === null || typeof payload !== 'object' || Array.isArray(payload)
          ? [{ field: prefix, message: 'must be a JSON object' }]
          : undefined;
      }
      if (validator.Check(payload)) return undefined;
      return validator
        .Errors(payload)
        .slice(0, 10)
        .map((error) => ({ field: `${prefix}${error.instancePath}`, message: error.message }));
    },

    jobRow(name, definition, payload, options, current) {
      const priority = options.priority ?? definition.priority ?? 0;
      const { maxAttempts } = options;
      if (maxAttempts !== undefined && !isAttemptCount(maxAttempts))
        throw jobErrors.invalidOptions(name, [{ field: 'maxAttempts', message: 'must be an integer ≥ 1' }]);
      const envelope: Envelope = {
        job: name,
        payload,
        ...(current?.tenantId === undefined ? {} : { tenantId: current.tenantId }),
        ...(current?.userId === undefined ? {} : { userId: current.userId }),
        ...(priority === 0 ? {} : { priority }),
        // Travels with the job (like the priority) so its handler knows its last attempt without
        // fetching the row's metadata.
        ...(maxAttempts === undefined ? {} : { maxAttempts }),
      };
      // Keys are per tenant: another tenant's key never collides with (nor reveals) this one's job.
      const id =
        options.key === undefined ? undefined : keyedJobId(name, `${current?.tenantId ?? ''}:${options.key}`);
      const startAfter =
        options.startAfter ?? (options.delayMs === undefined ? undefined : options.delayMs / 1000);
      return {
        ...(sendOptions.get(name) as SendOptions),
        ...(maxAttempts === undefined ? {} : { retryLimit: maxAttempts - 1 }),
        data: envelope,
        priority,
        ...(id === undefined ? {} : { id }),
        ...(startAfter === undefined ? {} : { startAfter }),
      };
    },
  };
}

/**
 * The id of a keyed job: a name-based UUID (RFC 9562 version 5) of name and key, so a second
 * enqueue with the same key hits pg-boss's primary key and inserts nothing. By hand because it
 * is ten lines of hashing, not worth a dependency.
 */
export function keyedJobId(name: string, key: string): string {
  const bytes = createHash('sha1').update(`socle-job:${name}:${key}`).digest().subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
