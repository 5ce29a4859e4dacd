import { isUuid } from '../kernel/ids/index.js';
// Straight from the files that define them: the queue's index loads pg-boss, and `socle jobs` with
// a usage error must answer without it.
import { JOB_QUEUES, JOB_STATES } from '../kernel/queue/job-definition.js';
import type { Jobs } from '../kernel/queue/jobs.js';
import type { JobListFilter, JobRecord } from '../kernel/queue/jobs.store.js';

export const JOBS_HELP = `Usage: socle jobs <command> [options] [--json] [--config <file>]

Operator commands on every tenant's jobs and global ones (the service behind /operator/jobs).

Commands:
  list [--queue <q>] [--state <s>] [--org <id>] [--limit <n>] [--after <id>]
                Jobs ordered by id, at most --limit (default 50, at most 1000); --after continues
                after the last id of the previous page. --state: ${JOB_STATES.join(', ')}
                (created and retry are queued; failed is dead after its last attempt).
                --queue: ${JOB_QUEUES.join(', ')}. --org: only that organization's jobs.
  show <id>     One job: state, attempts, payload, progress, last error.
  retry <id>    Runs a failed (dead) or cancelled job again.
  cancel <id>   Cancels a queued or running job (a running handler sees its signal aborted).

--json prints the jobs (list: {"jobs": [...]}) or the job as the admin API returns them.
The command runs no jobs: a process that works the queues picks a retried job up.
Embedded mode: while a server runs on the same DATA_DIR, it runs the command (see "socle help").`;

export interface JobsCommandOptions {
  readonly queue?: string | undefined;
  readonly state?: string | undefined;
  readonly org?: string | undefined;
  readonly limit?: string | undefined;
  readonly after?: string | undefined;
  readonly json?: boolean | undefined;
}

/** A `socle jobs` call, checked before the database is opened. */
export type JobsCommand =
  | {
      readonly action: 'list';
      readonly filter: JobListFilter;
      readonly json: boolean;
    }
  | { readonly action: 'show' | 'retry' | 'cancel'; readonly id: string; readonly json: boolean };

const MAX_LIMIT = 1000;

/** Parses `socle jobs …`; a string is the usage error to print (exit 2). */
export function parseJobsCommand(rest: readonly string[], options: JobsCommandOptions): JobsCommand | string {
  const [action, ...operands] = rest;
  const json = options.json === true;
  if (action === 'list') {
    if (operands.length > 0) return `socle jobs list takes no operand (got "${operands.join(' ')}").`;
    if (options.state !== undefined && !(JOB_STATES as readonly string[]).includes(options.state))
      return `--state must be one of ${JOB_STATES.join(', ')}; got "${options.state}".`;
    if (options.queue !== undefined && !(JOB_QUEUES as readonly string[]).includes(options.queue))
      return `--queue must be one of ${JOB_QUEUES.join(', ')}; got "${options.queue}".`;
    if (options.org !== undefined && !isUuid(options.org))
      return `--org must be an organization id (a UUID); got "${options.org}".`;
    if (options.after !== undefined && !isUuid(options.after))
      return `--after must be a job id (a UUID); got "${options.after}".`;
    const limit = options.limit === undefined ? 50 : Number(options.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > MAX_LIMIT)
      return `--limit must be an integer from 1 to ${MAX_LIMIT}; got "${options.limit}".`;
    return {
      action,
      filter: {
        tenantId: options.org ?? null,
        state: options.state,
        queue: options.queue,
        limit,
        after: options.after,
      },
      json,
    };
  }
  if (action === 'show' || action === 'retry' || action === 'cancel') {
    const flags = (['queue', 'state', 'org', 'limit', 'after'] as const).filter(
      (flag) => options[flag] !== undefined,
    );
    if (flags.length > 0) return `socle jobs ${action} takes no --${flags.join(', --')}.`;
    if (operands.length !== 1 || operands[0] === undefined) return `socle jobs ${action} needs one job id.`;
    return { action, id: operands[0], json };
  }
  return action === undefined
    ? 'socle jobs needs a command: list, show, retry or cancel.'
    : `Unknown command "jobs ${action}".`;
}

const cell = (value: string | null | undefined) => value ?? '-';

/** Rows as aligned columns, the header first. */
function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((title, column) =>
    Math.max(title.length, ...rows.map((row) => (row[column] ?? '').length)),
  );
  return [header, ...rows]
    .map((row) =>
      row
        .map((value, column) => (column === row.length - 1 ? value : value.padEnd(widths[column] ?? 0)))
        .join('  '),
    )
    .join('\n');
}

function formatList(jobs: readonly JobRecord[], limit: number): string {
  if (jobs.length === 0) return 'No jobs.\n';
  const rows = jobs.map((job) => [
    job.id,
    job.name,
    job.queue,
    job.state,
    `${job.attempts}/${job.maxAttempts}`,
    cell(job.tenantId),
    job.createdAt,
  ]);
  const more = jobs.length === limit ? `\n(more may follow: --after ${jobs[jobs.length - 1]?.id ?? ''})` : '';
  return `${table(['ID', 'JOB', 'QUEUE', 'STATE', 'ATTEMPTS', 'ORG', 'CREATED'], rows)}${more}\n`;
}

const asJson = (value: unknown) => (value === null || value === undefined ? '-' : JSON.stringify(value));

function formatJob(job: JobRecord): string {
  const rows: [string, string][] = [
    ['id', job.id],
    ['job', job.name],
    ['queue', job.queue],
    ['state', job.state],
    ['priority', String(job.priority)],
    ['attempts', `${job.attempts} of ${job.maxAttempts}`],
    ['org', cell(job.tenantId)],
    ['created', job.createdAt],
    ['start after', job.startAfter],
    ['started', cell(job.startedAt)],
    ['completed', cell(job.completedAt)],
    ['payload', asJson(job.payload)],
    ['progress', asJson(job.progress)],
    ['error', asJson(job.error)],
  ];
  return `${rows.map(([label, value]) => `${label.padEnd(12)} ${value}`).join('\n')}\n`;
}

/** Runs a parsed `socle jobs` command against the engine; returns what to print on stdout. */
export async function runJobsCommand(jobs: Jobs, command: JobsCommand): Promise<string> {
  if (command.action === 'list') {
    const list = await jobs.list(command.filter);
    return command.json
      ? `${JSON.stringify({ jobs: list }, null, 2)}\n`
      : formatList(list, command.filter.limit);
  }
  const job =
    command.action === 'show'
      ? await jobs.get(command.id, null)
      : command.action === 'retry'
        ? await jobs.retry(command.id, null)
        : await jobs.cancel(command.id, null);
  return command.json ? `${JSON.stringify(job, null, 2)}\n` : formatJob(job);
}
