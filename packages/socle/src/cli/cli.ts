import { parseArgs } from 'node:util';
import { SOCLE_VERSION } from '../kernel/version.js';
import { EXIT, failureOutput } from './exit-codes.js';
import { JOBS_HELP, parseJobsCommand } from './jobs-command.js';

// Only light imports here: `socle --help`, `--version` and usage errors answer without loading the
// server; commands.ts (the database, modules, HTTP) is imported once a command needs it.

const HELP: Record<string, string> = {
  main: `socle ${SOCLE_VERSION}: a self-hostable backend

Usage: socle <command> [options]

Commands:
  start [--processes <n|auto>]       Run the server (applies pending migrations first)
  migrate [apply]                    Apply pending migrations, then exit
  migrate status                     List migrations and their state
  privacy export --user <id|email>   Print everything held about a person (JSON)
  privacy erase --user <id|email>    Erase it in every module (resumable)
  worker [--queues high,default]     Work jobs only, no HTTP (Postgres only)
  ledger check                       Reconcile the ledger; exit 1 on drift (ledger module loaded)
  jobs list|show|retry|cancel        Inspect and steer jobs (see "socle help jobs")
  shards move <org> <shard>          Move an organization to another shard, online (SHARDS)
  backup [--output <dir>]            Back the database, local files and key up, while serving
  restore <dir> [--force]            Restore a backup into an empty installation
  plan <workload.yaml> [--json] [--html <file>]
                                     Capacity and cost plan by phase (see "socle help plan")
  bench --calibrate [--output <file>]
                                     Measure this machine's capacities for plan (see "socle help bench")
  help [topic]                       Help on a command, or "config" for every setting

Options:
  --config <file>   JSON config file (default: ./socle.config.json if present)
  -h, --help        Show help
  -v, --version     Print the version

Without DATABASE_URL, Socle runs embedded: PGlite in ./.socle/data, in-process fan-out.
Only one process opens an embedded database: while "socle start" runs, "socle jobs", "socle
privacy" and "socle migrate status" on the same DATA_DIR are run by that server (through the
socket DATA_DIR/cli.sock, open to the user it runs as); "socle migrate" needs it stopped.

Exit codes:
  0  success (for start: stopped by a signal after draining)
  1  failure at run time (database unreachable, migration failed, shutdown deadline exceeded)
  2  usage or configuration error`,
  start: `Usage: socle start [--processes <n|auto>] [--config <file>]

Opens the database (PGlite in DATA_DIR/data, or DATABASE_URL), applies pending migrations
(unless MIGRATE_ON_START=false), and serves HTTP on HOST:PORT.

SIGTERM or SIGINT drains: /readyz turns 503, no new connections, in-flight requests get
SHUTDOWN_TIMEOUT_MS, then the pool closes (exit 0; exit 1 if the deadline cut requests).
A second signal exits at once (exit 1); the same signal again within 1 s is the same request
(Ctrl-C under npm start arrives from the terminal and from npm).

--processes <n|auto>  (setting PROCESSES, default 1; the flag wins) runs n processes on this
machine, auto one per core, all listening on HOST:PORT: the kernel spreads connections between
them (SO_REUSEPORT, Linux). Needs DATABASE_URL, REDIS_URL and a fixed PORT (exit 2 otherwise).
This process then supervises: it applies migrations once, starts the n processes, restarts one
that exits (after 1 s, doubling up to 30 s while it keeps failing), forwards SIGTERM/SIGINT to
all (exit 0 when all drained, 1 otherwise) and kills them on a second signal.

PAYMENTS_FAKES=stripe,btcpay (embedded mode only, with the payments module in SOCLE_MODULES)
starts local fakes of those providers in this process and points the payments adapters at
them: a checkout's URL (or an invoice's link) is a page whose "Pay" button delivers the signed
webhook here, so coins can be bought end to end without a provider account. Refused with
DATABASE_URL (exit 2): the fakes accept any payment. See docs/payments.md.`,
  migrate: `Usage: socle migrate [apply|status] [--config <file>]

apply (default)  Apply pending migrations in dependency order, each in its own transaction,
                 under an advisory lock (safe to run from several nodes at once).
status           Print each migration as applied, pending, edited (changed after being
                 applied) or unknown (recorded, but no module ships it).
                 Exits 1 if any migration is pending or edited.`,
  privacy: `Usage: socle privacy export|erase --user <id|email> [--config <file>]

export  Prints, as JSON on stdout, everything every module holds about the person (GDPR art. 15, 20).
erase   Deletes or pseudonymizes it in every module, in one run (GDPR art. 17). Each module's part
        is recorded when done: if the run stops half-way (crash, error), running the same command
        again resumes it. Erasing someone already erased succeeds and changes nothing.
Logs go to stderr.`,
  ledger: `Usage: socle ledger check [--config <file>]

Recomputes every ledger account's balances from its transfers and checks that every unit of every
organization sums to zero (the ledger module must be loaded: SOCLE_MODULES). Prints the report as
JSON on stdout; exits 1 when anything drifted.`,
  jobs: JOBS_HELP,
  shards: `Usage: socle shards move <organization id> <shard> [--config <file>]

Moves an organization's rows from its shard (or the primary) to <shard> (a name of SHARDS, or
"primary") while it keeps serving: logical replication copies them and streams later changes; once
caught up, its writes are refused (503 shards.tenant_moving, retried by clients) for the
milliseconds it takes to see the last change arrive, compare every table on both sides and switch
the directory; then its rows are deleted from the old shard. Prints the rows moved per table and
the copy and freeze times as JSON. Needs wal_level=logical on the source and a superuser login
on the target. On failure before the switch everything is undone (exit 1).`,
  backup: `Usage: socle backup [--output <dir>] [--without-secret-key] [--config <file>]

Writes the whole installation at one moment into a new directory (default
./socle-backup-<UTC time>): the database, the local blobs (files' bytes in DATA_DIR/blobs or
BLOB_URL=file://), and manifest.json (Socle version, time, sizes, sha256, the id of the key that
sealed the stored secrets). The servers keep serving.

Embedded mode's generated DATA_DIR/secret-key is copied too (owner-only), since the restored
server cannot open its stored secrets without it: the backup is then as private as DATA_DIR.
--without-secret-key leaves it out (restore then needs SECRET_KEY set to it). A SECRET_KEY from
the environment is never written into a backup.

Postgres (DATABASE_URL)  pg_dump --format=custom: a consistent snapshot. Needs the Postgres
                         client tools of the server's major version or newer (PATH, POSTGRES_BIN).
Embedded                 PGlite's data directory as a gzipped tar, taken between transactions
                         by the running server (or by this process when none runs).
An S3 bucket (BLOB_URL=s3://) is not copied: use its own versioning or replication.
For point-in-time recovery on Postgres (RPO of minutes), see docs/operations.md#backups.`,
  restore: `Usage: socle restore <dir> [--force] [--config <file>]

Restores a directory written by "socle backup" into the installation the configuration names,
then applies the migrations this version has and the backup did not:

Postgres (DATABASE_URL)  pg_restore --single-transaction into that database (all or nothing).
                         It must not hold Socle yet: create a new one (createdb), restore into
                         it, point DATABASE_URL at it, and keep the old one until you are sure.
                         Creates the application role if the cluster lacks it.
Embedded                 into DATA_DIR/data; the server must be stopped. With --force, the data,
                         blobs and key already there are moved aside
                         (<name>.before-restore-<time>), never deleted.
The manifest's sha256 is checked first: a damaged backup restores nothing.`,
  plan: `Usage: socle plan <workload.yaml> [--json] [--html <file>] [--calibration <file>]

Reads a workload (a product by growth phase, in founders' units: users, requests per user per
day, jobs, files, AI, payments, availability) and prints, per phase, the API and worker nodes,
Postgres, Redis and object storage it needs, sized from Socle's measured CPU per operation (the
calibration profile written by "socle bench --calibrate"), the monthly cost per provider from
the shipped price table, and every check the workload's own figures fail. See docs/plan.md.

--json                 the plan as JSON on stdout
--html <file>          also write a self-contained HTML report (charts, no external resource)
--calibration <file>   a calibration profile of your own machine (written by "socle bench
                       --calibrate") instead of the shipped one

Exit 0 when planned (found errors are part of the report), 2 for an invalid workload (every
problem named with its field path and the unit expected).`,
  bench: `Usage: socle bench --calibrate [--output <file>] [--duration <seconds>] [--connections <n>]

Measures Socle's CPU per operation on this machine and writes a calibration profile for
"socle plan --calibration <file>" (default file ./socle-calibration.json). It starts a Socle
server (the built-in modules and a small tenant table) as a child process on a throwaway
database: embedded PGlite in a temporary directory, or, when DATABASE_URL is set, a fresh
database it creates on that server and drops at the end (the login needs CREATEDB). It signs
up users, then runs bounded phases against it over keep-alive connections: tenant read
(signed-in GET of one row under RLS), tenant write (PATCH of it), sign-in (argon2id), jobs
(batches of no-op jobs enqueued and processed), file upload (1 MiB files through the files
module, per MB; on a local directory, or on the store BLOB_URL names), realtime (deliveries
to WebSockets, memory per connection). The server reports its own CPU time per phase, so the
figures are the server's alone; with a Postgres on this machine, the CPU of its backends per
operation is written too. A progress bar goes to stderr; a warning when the load average is
above the core count (the figures are then inflated).

--output <file>        where to write the profile (default socle-calibration.json)
--duration <seconds>   length of each phase (default 10)
--connections <n>      keep-alive connections, each with one request in flight (default 16)

Ctrl-C stops it cleanly: the throwaway database is dropped, nothing is written.
Exit 0 when written, 1 when a phase failed or it was interrupted, 2 for a bad flag.`,
  config: 'Settings (environment variable / socle.config.json key, default):',
};

async function helpFor(topic: string, configFile: string | undefined): Promise<string | undefined> {
  if (topic === 'config') {
    // The kernel's settings, then each module's: built-ins and those SOCLE_MODULES loads.
    const rows = (await (await commands()).describeAllSettings(configFile)).map(
      (setting) =>
        `  ${setting.env.padEnd(36)} ${setting.fileKey.padEnd(32)} ${setting.defaultValue}\n      ${setting.module === undefined ? '' : `(${setting.module}) `}${setting.description}`,
    );
    return `${HELP.config}\n${rows.join('\n')}\n\nThe environment wins over the file; the file wins over defaults.`;
  }
  return HELP[topic];
}

const parseCommandLine = (argv: readonly string[]) =>
  parseArgs({
    args: [...argv],
    options: {
      config: { type: 'string' },
      user: { type: 'string' },
      queues: { type: 'string' },
      processes: { type: 'string' },
      queue: { type: 'string' },
      state: { type: 'string' },
      org: { type: 'string' },
      limit: { type: 'string' },
      after: { type: 'string' },
      json: { type: 'boolean' },
      html: { type: 'string' },
      calibration: { type: 'string' },
      output: { type: 'string' },
      calibrate: { type: 'boolean' },
      duration: { type: 'string' },
      connections: { type: 'string' },
      force: { type: 'boolean' },
      'without-secret-key': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    allowPositionals: true,
  });

const commands = () => import('./commands.js');

/** Runs the CLI with `argv` (without node and script) and returns the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (error) {
    process.stderr.write(`${(error as Error).message}\n\n${HELP.main}\n`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  const [command = 'help', ...rest] = positionals;
  if (values.version) {
    process.stdout.write(`${SOCLE_VERSION}\n`);
    return EXIT.ok;
  }
  if (command === 'help' || values.help) {
    const topic = command === 'help' ? (rest[0] ?? 'main') : command;
    const text = await helpFor(topic, values.config);
    if (text === undefined) {
      process.stderr.write(`Unknown help topic "${topic}".\n\n${HELP.main}\n`);
      return EXIT.usage;
    }
    process.stdout.write(`${text}\n`);
    return EXIT.ok;
  }
  if (values.processes !== undefined && command !== 'start') {
    process.stderr.write(`--processes applies to socle start only.\n\n${HELP.main}\n`);
    return EXIT.usage;
  }
  try {
    switch (command) {
      case 'start':
        if (rest.length > 0) break;
        return await (await commands()).start(values.config, values.processes);
      case 'worker':
        if (rest.length > 0) break;
        return await (await commands()).worker(values.config, values.queues);
      case 'privacy': {
        const action = rest[0];
        if (rest.length !== 1 || (action !== 'export' && action !== 'erase')) break;
        if (values.user === undefined) {
          process.stderr.write(`socle privacy ${action} needs --user <id|email>.\n\n${HELP.privacy}\n`);
          return EXIT.usage;
        }
        return await (await commands()).runOneShot(values.config, {
          command: 'privacy',
          action,
          user: values.user,
        });
      }
      case 'jobs': {
        const parsedJobs = parseJobsCommand(rest, values);
        if (typeof parsedJobs === 'string') {
          process.stderr.write(`${parsedJobs}\n\n${JOBS_HELP}\n`);
          return EXIT.usage;
        }
        return await (await commands()).runOneShot(values.config, { command: 'jobs', jobs: parsedJobs });
      }
      case 'ledger':
        if (rest.length !== 1 || rest[0] !== 'check') break;
        return await (await commands()).runOneShot(values.config, { command: 'ledger check' });
      case 'backup':
        if (rest.length > 0) break;
        return await (await commands()).backup(
          values.config,
          values.output,
          values['without-secret-key'] === true,
        );
      case 'restore': {
        const [directory] = rest;
        if (rest.length !== 1 || directory === undefined) {
          process.stderr.write(`socle restore needs one backup directory.\n\n${HELP.restore}\n`);
          return EXIT.usage;
        }
        return await (await commands()).restore(values.config, directory, values.force === true);
      }
      case 'plan': {
        const [file] = rest;
        if (rest.length !== 1 || file === undefined) {
          process.stderr.write(`socle plan needs one workload file.\n\n${HELP.plan}\n`);
          return EXIT.usage;
        }
        return await (await import('../plan/command.js')).runPlan(file, {
          json: values.json === true,
          html: values.html,
          calibration: values.calibration,
        });
      }
      case 'bench': {
        if (rest.length > 0 || values.calibrate !== true) {
          process.stderr.write(`socle bench needs --calibrate (and no other argument).\n\n${HELP.bench}\n`);
          return EXIT.usage;
        }
        const { parseCalibrateOptions, runCalibration } = await import('./calibrate.js');
        const options = parseCalibrateOptions(values);
        if (typeof options === 'string') {
          process.stderr.write(`socle bench --calibrate: ${options}\n\n${HELP.bench}\n`);
          return EXIT.usage;
        }
        return await runCalibration(options);
      }
      case 'shards': {
        const [action, tenantId, shard] = rest;
        if (rest.length !== 3 || action !== 'move' || tenantId === undefined || shard === undefined) {
          process.stderr.write(`socle shards move needs an organization id and a shard.\n\n${HELP.shards}\n`);
          return EXIT.usage;
        }
        return await (await commands()).moveShard(values.config, tenantId, shard);
      }
      case 'migrate': {
        const action = rest[0] ?? 'apply';
        if (rest.length > 1 || (action !== 'apply' && action !== 'status')) break;
        return action === 'apply'
          ? await (await commands()).migrate(values.config)
          : await (await commands()).runOneShot(values.config, { command: 'migrate status' });
      }
    }
  } catch (error) {
    const failure = failureOutput(error);
    process.stderr.write(failure.stderr);
    return failure.code;
  }
  process.stderr.write(`Unknown command "${positionals.join(' ')}".\n\n${HELP.main}\n`);
  return EXIT.usage;
}
