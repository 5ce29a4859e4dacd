import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Config, describeSettings, loadConfig } from '../kernel/config/index.js';
import { migrationStatus, openDatabase } from '../kernel/db/index.js';
import { isSocleError } from '../kernel/errors/index.js';
import { createLogger, type Logger } from '../kernel/log/index.js';
import type { ModuleDefinition } from '../kernel/modules/index.js';
import { JOB_QUEUES, type JobQueue } from '../kernel/queue/index.js';
import { openSecretBox } from '../kernel/secrets/index.js';
import { collectMigrations, createSocle, SOCLE_VERSION, type Socle } from '../kernel/socle.js';
import { createBuiltInModules } from '../modules/index.js';
import { createPrivacyService } from '../modules/privacy/index.js';
import { EXIT, EXIT_AFTER_DEADLINE_MS } from './exit-codes.js';
import { installSchema } from './install-schema.js';
import { JOBS_HELP, parseJobsCommand, runJobsCommand } from './jobs-command.js';
import { loadModules } from './module-loader.js';
import { onStopSignals } from './stop-signals.js';
import {
  type ListeningMessage,
  SUPERVISED_PROCESS_ENV,
  superviseProcesses,
  supervisionProblems,
} from './supervisor.js';

const HELP: Record<string, string> = {
  main: `socle ${SOCLE_VERSION}: a self-hostable backend

Usage: socle <command> [options]

Commands:
  start [--processes <n|auto>]       Run the server (applies pending migrations first)
  migrate [apply]   Apply pending migrations, then exit
  migrate status    List migrations and their state
  privacy export --user <id|email>   Print everything held about a person (JSON)
  privacy erase --user <id|email>    Erase it in every module (resumable)
  worker [--queues high,default]     Work jobs only, no HTTP (Postgres only)
  jobs list|show|retry|cancel        Inspect and steer jobs (see "socle help jobs")
  help [topic]      Help on a command, or "config" for every setting

Options:
  --config <file>   JSON config file (default: ./socle.config.json if present)
  -h, --help        Show help
  -v, --version     Print the version

Without DATABASE_URL, Socle runs embedded: PGlite in ./.socle/data, in-process fan-out.

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
all (exit 0 when all drained, 1 otherwise) and kills them on a second signal.`,
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
  jobs: JOBS_HELP,
  config: 'Settings (environment variable / socle.config.json key, default):',
};

function helpFor(topic: string): string | undefined {
  if (topic === 'config') {
    const rows = describeSettings().map(
      (setting) =>
        `  ${setting.env.padEnd(30)} ${setting.fileKey.padEnd(28)} ${setting.defaultValue}\n      ${setting.description}`,
    );
    return `${HELP.config}\n${rows.join('\n')}\n\nThe environment wins over the file; the file wins over defaults.`;
  }
  return HELP[topic];
}

async function loadAll(
  configFile: string | undefined,
  processes?: string,
): Promise<{ config: Config; modules: ModuleDefinition[] }> {
  const config = loadConfig({
    env: process.env,
    ...(configFile === undefined ? {} : { configFile }),
    ...(processes === undefined ? {} : { flags: { processes } }),
  });
  const modules = [...createBuiltInModules(), ...(await loadModules(config.modules, config.baseDir))];
  return { config, modules };
}

/** `socle worker`: jobs only, in a process of its own; any number of them on Postgres. */
async function worker(configFile: string | undefined, queues: string | undefined): Promise<number> {
  const { config, modules } = await loadAll(configFile);
  if (config.databaseUrl === undefined) {
    process.stderr.write(
      'socle worker needs Postgres (DATABASE_URL): the embedded database belongs to the one process that opened its data directory. In embedded mode the server works the jobs itself (JOBS_QUEUES).\n',
    );
    return EXIT.usage;
  }
  const jobQueues = queues === undefined ? config.jobsQueues : queues.split(',').map((queue) => queue.trim());
  const unknown = jobQueues.filter((queue) => !(JOB_QUEUES as readonly string[]).includes(queue));
  if (unknown.length > 0 || jobQueues.length === 0) {
    process.stderr.write(`--queues must list ${JOB_QUEUES.join(', ')}; got "${queues}".\n`);
    return EXIT.usage;
  }
  return serve(config, modules, jobQueues as JobQueue[]);
}

async function start(configFile: string | undefined, processes: string | undefined): Promise<number> {
  const { config, modules } = await loadAll(configFile, processes);
  if (config.processes > 1) return supervise(configFile, config, modules);
  return serve(config, modules);
}

/** Runs one Socle process: the HTTP server (`start`), or jobs only when `workerQueues` is given. */
async function serve(
  config: Config,
  modules: readonly ModuleDefinition[],
  workerQueues?: readonly JobQueue[],
): Promise<number> {
  const log = createLogger(config);
  // Started by `socle start --processes N`: share the port, report, and never outlive the supervisor.
  const supervised = process.env[SUPERVISED_PROCESS_ENV] !== undefined && process.send !== undefined;
  const socle = await createSocle({
    config,
    modules,
    log,
    ...(workerQueues === undefined ? {} : { jobQueues: workerQueues }),
  });
  if (workerQueues !== undefined) {
    log.info({ queues: workerQueues, pid: process.pid }, `Socle ${SOCLE_VERSION} worker started`);
    return waitForSignal(socle, config, log, false);
  }
  const url = await socle.listen({ reusePort: supervised });
  log.info(
    {
      url,
      mode: socle.mode,
      data: socle.db.location,
      version: SOCLE_VERSION,
      modules: socle.modules.map((module) => module.name),
    },
    `Socle ${SOCLE_VERSION} listening on ${url} (${socle.mode === 'embedded' ? 'embedded: PGlite' : 'postgres'}, data: ${socle.db.location})`,
  );
  // Not connected any more: the supervisor is gone, and waitForSignal drains at once.
  if (supervised && process.connected)
    process.send?.({ type: 'socle:listening', url } satisfies ListeningMessage);
  return waitForSignal(socle, config, log, supervised);
}

/**
 * `socle start` with PROCESSES > 1: checks what several processes need, applies migrations once,
 * then runs the processes (see supervisor.ts).
 */
async function supervise(
  configFile: string | undefined,
  config: Config,
  modules: readonly ModuleDefinition[],
): Promise<number> {
  const problems = supervisionProblems(config);
  if (problems.length > 0) {
    process.stderr.write(
      `socle start cannot run ${config.processes} processes (PROCESSES / --processes):\n${problems.map((problem) => `  ${problem}`).join('\n')}\n\nRun "socle help start" for details.\n`,
    );
    return EXIT.usage;
  }
  // Refuse a missing SECRET_KEY here, once, rather than from every process.
  openSecretBox({
    secretKey: config.secretKey,
    previousSecretKeys: config.previousSecretKeys,
    mode: 'postgres',
    dataDir: path.resolve(config.baseDir, config.dataDir),
  });
  const log = createLogger(config);
  if (config.migrateOnStart) await installSchema(config, modules, log);
  const script = process.argv[1];
  if (script === undefined) throw new Error('No CLI script to start the processes with');
  return superviseProcesses({
    config,
    log,
    script,
    execArgv: process.execArgv,
    args: ['start', ...(configFile === undefined ? [] : ['--config', configFile])],
    env: process.env,
  });
}

function waitForSignal(socle: Socle, config: Config, log: Logger, supervised: boolean): Promise<number> {
  return new Promise<number>((resolve) => {
    let stopping = false;
    const exitNow = (signal: NodeJS.Signals) => {
      log.warn({ signal }, 'Second signal: exiting now');
      resolve(EXIT.failure);
    };
    const drain = (reason: NodeJS.Signals | 'supervisor gone') => {
      stopping = true;
      log.info(
        { signal: reason, deadlineMs: config.shutdownTimeoutMs },
        reason === 'supervisor gone'
          ? 'Supervisor gone: draining in-flight requests'
          : 'Shutting down: draining in-flight requests',
      );
      // If something hangs past the deadline (a stuck query), leave anyway.
      setTimeout(() => {
        log.error('Shutdown did not finish after the deadline; exiting');
        resolve(EXIT.failure);
      }, config.shutdownTimeoutMs + EXIT_AFTER_DEADLINE_MS).unref();
      socle.close().then(
        ({ drained }) => {
          log.info({ drained }, drained ? 'Stopped' : 'Stopped after cutting requests at the deadline');
          resolve(drained ? EXIT.ok : EXIT.failure);
        },
        (error: unknown) => {
          log.error({ err: error }, 'Shutdown failed');
          resolve(EXIT.failure);
        },
      );
    };
    onStopSignals({
      // Already draining because the supervisor left: a signal now means "exit now".
      stop: (signal) => (stopping ? exitNow(signal) : drain(signal)),
      force: exitNow,
    });
    if (supervised) {
      // The IPC channel closes when the supervisor exits, even killed with -9: nobody would stop
      // or restart this process any more, so it drains and leaves.
      const supervisorGone = () => {
        if (!stopping) drain('supervisor gone');
      };
      if (process.connected) process.once('disconnect', supervisorGone);
      else supervisorGone();
    }
  });
}

async function migrate(action: string, configFile: string | undefined): Promise<number> {
  const { config, modules } = await loadAll(configFile);
  const log = createLogger(config);
  if (action === 'apply') {
    const applied = await installSchema(config, modules, log);
    process.stdout.write(
      applied.length === 0
        ? 'Nothing to apply: the database is up to date.\n'
        : `Applied ${applied.length} migration(s).\n`,
    );
    return EXIT.ok;
  }
  const migrations = collectMigrations(modules);
  const db = await openDatabase({ config, log });
  try {
    const statuses = await migrationStatus(db, migrations);
    for (const status of statuses) {
      process.stdout.write(
        `${status.state.padEnd(8)} ${`${status.module}/${status.name}`.padEnd(60)} ${status.appliedAt?.toISOString() ?? ''}\n`,
      );
    }
    if (statuses.length === 0) process.stdout.write('No migrations.\n');
    return statuses.some((status) => status.state === 'pending' || status.state === 'edited')
      ? EXIT.failure
      : EXIT.ok;
  } finally {
    await db.close();
  }
}

/**
 * A one-shot command on a Socle that works no queue and serves no HTTP: `run` returns what to print
 * on stdout (which carries the answer, so logs go to stderr).
 */
async function runCommand(
  configFile: string | undefined,
  run: (socle: Socle) => Promise<string>,
): Promise<number> {
  const { config, modules } = await loadAll(configFile);
  const socle = await createSocle({
    config,
    modules,
    log: createLogger(config, process.stderr),
    jobQueues: [],
  });
  try {
    process.stdout.write(await run(socle));
    return EXIT.ok;
  } finally {
    await socle.close();
  }
}

function privacy(action: 'export' | 'erase', user: string, configFile: string | undefined): Promise<number> {
  return runCommand(configFile, async (socle) => {
    const service = createPrivacyService(socle.context);
    const subject = await service.findSubject(user);
    if (action === 'export') return `${JSON.stringify(await service.export(subject), null, 2)}\n`;
    const result = await service.erase(subject);
    return `Erased ${result.userId} (run ${result.runId}; modules erased now: ${result.erasedNow.join(', ') || 'none'}).\n`;
  });
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
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean', short: 'v' },
    },
    allowPositionals: true,
  });

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
    const text = helpFor(topic);
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
        return await start(values.config, values.processes);
      case 'worker':
        if (rest.length > 0) break;
        return await worker(values.config, values.queues);
      case 'privacy': {
        const action = rest[0];
        if (rest.length !== 1 || (action !== 'export' && action !== 'erase')) break;
        if (values.user === undefined) {
          process.stderr.write(`socle privacy ${action} needs --user <id|email>.\n\n${HELP.privacy}\n`);
          return EXIT.usage;
        }
        return await privacy(action, values.user, values.config);
      }
      case 'jobs': {
        const parsedJobs = parseJobsCommand(rest, values);
        if (typeof parsedJobs === 'string') {
          process.stderr.write(`${parsedJobs}\n\n${JOBS_HELP}\n`);
          return EXIT.usage;
        }
        return await runCommand(values.config, (socle) => runJobsCommand(socle.jobs, parsedJobs));
      }
      case 'migrate': {
        const action = rest[0] ?? 'apply';
        if (rest.length > 1 || (action !== 'apply' && action !== 'status')) break;
        return await migrate(action, values.config);
      }
    }
  } catch (error) {
    if (isSocleError(error) && error.code === 'config.invalid') {
      process.stderr.write(`${error.message}\n\nRun "socle help config" for every setting.\n`);
      return EXIT.usage;
    }
    if (isSocleError(error)) {
      process.stderr.write(`socle: ${error.message} [${error.code}]\n`);
      return EXIT.failure;
    }
    process.stderr.write(`socle: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT.failure;
  }
  process.stderr.write(`Unknown command "${positionals.join(' ')}".\n\n${HELP.main}\n`);
  return EXIT.usage;
}
