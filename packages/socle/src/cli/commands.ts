import path from 'node:path';
import type { Config } from '../kernel/config/index.js';
import {
  describeSettings,
  loadConfig,
  readModuleSpecifiers,
  type SettingDescription,
} from '../kernel/config/index.js';
import { type Database, type Migration, migrationStatus, openDatabase } from '../kernel/db/index.js';
import { createLogger, type Logger } from '../kernel/log/index.js';
import type { ModuleDefinition } from '../kernel/modules/index.js';
import { JOB_QUEUES, type JobQueue } from '../kernel/queue/index.js';
import { openSecretBox } from '../kernel/secrets/index.js';
import { moveTenant } from '../kernel/shards/index.js';
import { collectMigrations, createSocle, type Socle } from '../kernel/socle.js';
import { SOCLE_VERSION } from '../kernel/version.js';
import { createBuiltInModules } from '../modules/index.js';
import type { LedgerServices } from '../modules/ledger/index.js';
import { createPrivacyService } from '../modules/privacy/index.js';
import {
  BackupError,
  type BackupManifest,
  defaultBackupDirectory,
  type RestoreReport,
  restoreBackup,
  writeBackup,
} from './backup.js';
import {
  askRunningServer,
  type CommandOutput,
  type ControlCommand,
  type ControlSocket,
  controlSocketPath,
  openControlSocket,
} from './control-socket.js';
import { EXIT, EXIT_AFTER_DEADLINE_MS, failureOutput } from './exit-codes.js';
import { installSchema } from './install-schema.js';
import { runJobsCommand } from './jobs-command.js';
import { loadModules } from './module-loader.js';
import { type RunningPaymentFakes, readPaymentFakes, startPaymentFakes } from './payment-fakes.js';
import { onStopSignals } from './stop-signals.js';
import {
  type ListeningMessage,
  SUPERVISED_PROCESS_ENV,
  superviseProcesses,
  supervisionProblems,
} from './supervisor.js';

/**
 * The CLI's commands that load Socle: imported by cli.ts only once it knows it needs them, so
 * `socle --help`, `--version` and usage errors answer without loading the server.
 */

const dataDirOf = (config: Config) => path.resolve(config.baseDir, config.dataDir);

/**
 * The configuration and the modules it runs: built-ins, then `SOCLE_MODULES`, loaded first so
 * every setting of the kernel and of every module is checked in one pass (one message for all).
 */
async function loadAll(
  configFile: string | undefined,
  processes?: string,
  overrides: Readonly<Record<string, string>> = {},
): Promise<{ config: Config; modules: ModuleDefinition[] }> {
  const sources = {
    env: { ...process.env, ...overrides },
    ...(configFile === undefined ? {} : { configFile }),
  };
  const { specifiers, baseDir } = readModuleSpecifiers(sources);
  const modules = [...createBuiltInModules(), ...(await loadModules(specifiers, baseDir))];
  const config = loadConfig({
    ...sources,
    ...(processes === undefined ? {} : { flags: { processes } }),
    modules,
  });
  return { config, modules };
}

/**
 * What `socle help config` lists: the kernel's settings and every module's (built-ins, and those
 * `SOCLE_MODULES` names when they load; help still answers when one does not).
 */
export async function describeAllSettings(
  configFile: string | undefined,
): Promise<readonly SettingDescription[]> {
  const { specifiers, baseDir } = readModuleSpecifiers({
    env: process.env,
    ...(configFile === undefined ? {} : { configFile }),
  });
  const extra = await loadModules(specifiers, baseDir).catch(() => []);
  return describeSettings([...createBuiltInModules(), ...extra]);
}

/** `socle worker`: jobs only, in a process of its own; any number of them on Postgres. */
export async function worker(configFile: string | undefined, queues: string | undefined): Promise<number> {
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

export async function start(configFile: string | undefined, processes: string | undefined): Promise<number> {
  const loaded = await loadAll(configFile, processes);
  const fakeNames = readPaymentFakes(process.env.PAYMENTS_FAKES);
  if (typeof fakeNames === 'string') {
    process.stderr.write(`${fakeNames}\n`);
    return EXIT.usage;
  }
  if (fakeNames.length === 0) {
    if (loaded.config.processes > 1) return supervise(configFile, loaded.config, loaded.modules);
    return serve(loaded.config, loaded.modules);
  }
  const refusal =
    loaded.config.databaseUrl !== undefined
      ? 'it runs in embedded mode only (no DATABASE_URL): the fakes accept any payment, so a server on Postgres never starts them'
      : loaded.config.processes > 1
        ? 'it runs in one process (PROCESSES=1): the fakes live in the process that starts them'
        : !loaded.modules.some((module) => module.name === 'payments')
          ? 'no module named payments runs: add the module file that creates it (createPaymentsModule) to SOCLE_MODULES'
          : undefined;
  if (refusal !== undefined) {
    process.stderr.write(`socle start refuses PAYMENTS_FAKES=${process.env.PAYMENTS_FAKES}: ${refusal}.\n`);
    return EXIT.usage;
  }
  const fakes = await startPaymentFakes(fakeNames, process.env);
  try {
    // Again, with the fakes' addresses and keys over the environment's payments settings.
    const { config, modules } = await loadAll(configFile, processes, fakes.env);
    return await serve(config, modules, undefined, fakes);
  } finally {
    await fakes.close();
  }
}

/** Runs one Socle process: the HTTP server (`start`), or jobs only when `workerQueues` is given. */
async function serve(
  config: Config,
  modules: readonly ModuleDefinition[],
  workerQueues?: readonly JobQueue[],
  fakes?: RunningPaymentFakes,
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
  if (fakes !== undefined) {
    fakes.attach(url);
    log.warn(
      { fakes: fakes.names, env: Object.keys(fakes.env) },
      `Payments run against local fakes (PAYMENTS_FAKES=${fakes.names.join(',')}): every payment is pretend. Open a checkout's URL and press Pay`,
    );
  }
  // Embedded: the CLI's one-shot commands (jobs, privacy, migrate status) reach the database here.
  const control =
    socle.mode === 'embedded'
      ? await openControlSocket(
          controlSocketPath(dataDirOf(config)),
          (command) => executeCommand(socle, command),
          log,
        ).catch((error: unknown) => {
          // The server runs without it: a CLI command then says the data directory is in use.
          log.warn(
            { err: error },
            'Cannot open the CLI socket in DATA_DIR: socle jobs, privacy and migrate status cannot reach this server',
          );
          return undefined;
        })
      : undefined;
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
  return waitForSignal(socle, config, log, supervised, control);
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

function waitForSignal(
  socle: Socle,
  config: Config,
  log: Logger,
  supervised: boolean,
  control?: ControlSocket,
): Promise<number> {
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
      Promise.all([control?.close(), socle.close()]).then(
        ([, { drained }]) => {
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

/** `socle migrate [apply]`: applies pending migrations with the database to itself. */
export async function migrate(configFile: string | undefined): Promise<number> {
  const { config, modules } = await loadAll(configFile);
  const log = createLogger(config);
  if (config.databaseUrl === undefined && (await isServerRunning(config))) {
    process.stderr.write(
      `A Socle server is running on ${dataDirOf(config)}: it applied its migrations when it started (MIGRATE_ON_START). To apply new ones, stop it and run "socle migrate", or start it again.\n`,
    );
    return EXIT.failure;
  }
  const applied = await installSchema(config, modules, log);
  process.stdout.write(
    applied.length === 0
      ? 'Nothing to apply: the database is up to date.\n'
      : `Applied ${applied.length} migration(s).\n`,
  );
  return EXIT.ok;
}

async function isServerRunning(config: Config): Promise<boolean> {
  // `migrate status` is the cheapest command to ask: it only reads.
  return (
    (await askRunningServer(controlSocketPath(dataDirOf(config)), { command: 'migrate status' })) !==
    undefined
  );
}

async function migrationStatusOutput(db: Database, migrations: readonly Migration[]): Promise<CommandOutput> {
  const statuses = await migrationStatus(db, migrations);
  const lines = statuses.map(
    (status) =>
      `${status.state.padEnd(8)} ${`${status.module}/${status.name}`.padEnd(60)} ${status.appliedAt?.toISOString() ?? ''}\n`,
  );
  return {
    stdout: statuses.length === 0 ? 'No migrations.\n' : lines.join(''),
    stderr: '',
    code: statuses.some((status) => status.state === 'pending' || status.state === 'edited')
      ? EXIT.failure
      : EXIT.ok,
  };
}

/** Runs a one-shot command in `socle` (this process's, or the running server's); never throws. */
async function executeCommand(socle: Socle, command: ControlCommand): Promise<CommandOutput> {
  try {
    switch (command.command) {
      case 'migrate status':
        return await migrationStatusOutput(socle.db, socle.migrations);
      case 'jobs':
        return { stdout: await runJobsCommand(socle.jobs, command.jobs), stderr: '', code: EXIT.ok };
      case 'backup':
        return {
          stdout: backupSummary(
            await writeBackup(socle.config, command.output, socle.db, {
              withoutSecretKey: command.withoutSecretKey,
            }),
            command.output,
          ),
          stderr: '',
          code: EXIT.ok,
        };
      case 'ledger check': {
        if (!socle.modules.some((module) => module.name === 'ledger'))
          return {
            stdout: '',
            stderr:
              'The ledger module is not loaded: add a module file exporting createLedgerModule() to SOCLE_MODULES.\n',
            code: EXIT.usage,
          };
        const report = await socle.servicesOf<LedgerServices>('ledger').ledger.check('operator');
        return {
          stdout: `${JSON.stringify(report, null, 2)}\n`,
          stderr: report.ok ? '' : 'Ledger drift found.\n',
          code: report.ok ? EXIT.ok : EXIT.failure,
        };
      }
      case 'privacy': {
        const service = createPrivacyService(socle.context);
        const subject = await service.findSubject(command.user);
        if (command.action === 'export')
          return {
            stdout: `${JSON.stringify(await service.export(subject), null, 2)}\n`,
            stderr: '',
            code: EXIT.ok,
          };
        const result = await service.erase(subject);
        return {
          stdout: `Erased ${result.userId} (run ${result.runId}; modules erased now: ${result.erasedNow.join(', ') || 'none'}).\n`,
          stderr: '',
          code: EXIT.ok,
        };
      }
    }
  } catch (error) {
    if (error instanceof BackupError)
      return {
        stdout: '',
        stderr: `socle: ${error.message}\n`,
        code: error.usage ? EXIT.usage : EXIT.failure,
      };
    return { stdout: '', ...failureOutput(error) };
  }
  // Only another version of the CLI, or a hand-written client, sends something else.
  return { stdout: '', stderr: 'This server does not know that command.\n', code: EXIT.usage };
}

/**
 * `socle jobs …`, `socle privacy …`, `socle migrate status`. Embedded, with a server running on the
 * same data directory, the server runs it (see control-socket.ts); otherwise this process opens the
 * database, works no queue and serves no HTTP. stdout carries the answer; logs go to stderr, and
 * only from `warn` up (`LOG_LEVEL=debug` still shows everything).
 */
export async function runOneShot(configFile: string | undefined, command: ControlCommand): Promise<number> {
  const { config, modules } = await loadAll(configFile);
  if (config.databaseUrl === undefined) {
    const answer = await askRunningServer(controlSocketPath(dataDirOf(config)), command);
    if (answer !== undefined) return print(answer);
  }
  const quiet: Config = { ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel };
  const log = createLogger(quiet, process.stderr);
  if (command.command === 'migrate status') {
    // Only reads: no need to migrate or start modules.
    const db = await openDatabase({ config, log });
    try {
      return print(await migrationStatusOutput(db, collectMigrations(modules)));
    } finally {
      await db.close();
    }
  }
  const socle = await createSocle({ config: quiet, modules, log, jobQueues: [] });
  try {
    return print(await executeCommand(socle, command));
  } finally {
    await socle.close();
  }
}

function print(output: CommandOutput): number {
  process.stdout.write(output.stdout);
  process.stderr.write(output.stderr);
  return output.code;
}

/**
 * `socle backup [--output <dir>]`: Postgres, pg_dump from this process while the nodes serve;
 * embedded, the running server takes the snapshot (it holds the database), or this process when
 * none runs. Local blobs are copied beside it.
 */
export async function backup(
  configFile: string | undefined,
  output: string | undefined,
  withoutSecretKey: boolean,
): Promise<number> {
  const { config } = await loadAll(configFile);
  const directory = output === undefined ? defaultBackupDirectory(new Date()) : path.resolve(output);
  const command: ControlCommand = { command: 'backup', output: directory, withoutSecretKey };
  if (config.databaseUrl === undefined) {
    const answer = await askRunningServer(controlSocketPath(dataDirOf(config)), command);
    if (answer !== undefined) return print(answer);
  }
  const log = createLogger(
    { ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel },
    process.stderr,
  );
  return guardBackup(async () => {
    const db = config.databaseUrl === undefined ? await openDatabase({ config, log }) : undefined;
    try {
      return backupSummary(await writeBackup(config, directory, db, { withoutSecretKey }), directory);
    } finally {
      await db?.close();
    }
  });
}

/** `socle restore <dir> [--force]`: into an empty database or DATA_DIR, with its server stopped. */
export async function restore(
  configFile: string | undefined,
  input: string,
  force: boolean,
): Promise<number> {
  const { config, modules } = await loadAll(configFile);
  if (config.databaseUrl === undefined && (await isServerRunning(config))) {
    process.stderr.write(
      `A Socle server is running on ${dataDirOf(config)}: stop it before restoring into its data directory.\n`,
    );
    return EXIT.failure;
  }
  const log = createLogger(
    { ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel },
    process.stderr,
  );
  return guardBackup(async () => {
    const report = await restoreBackup(config, path.resolve(input), { force, log });
    // The restored schema is this version's, or older: bring it up to date now, as `socle migrate`.
    const applied = await installSchema(config, modules, log);
    return restoreSummary(report, applied.length);
  });
}

async function guardBackup(work: () => Promise<string>): Promise<number> {
  try {
    process.stdout.write(await work());
    return EXIT.ok;
  } catch (error) {
    if (!(error instanceof BackupError)) throw error;
    process.stderr.write(`socle: ${error.message}\n`);
    return error.usage ? EXIT.usage : EXIT.failure;
  }
}

function backupSummary(manifest: BackupManifest, directory: string): string {
  const blobs = manifest.blobs.included
    ? `${manifest.blobs.files} blob file(s), ${formatBytes(manifest.blobs.bytes)}`
    : `blobs not copied: ${manifest.blobs.reason}`;
  const key = manifest.secretKey.included
    ? ` It holds DATA_DIR/secret-key, which opens the stored secrets: keep it as private as DATA_DIR.`
    : ` Restoring it needs the secret key of id ${manifest.secretKey.id} (SECRET_KEY).`;
  return `Backup written to ${directory} in ${(manifest.durationMs / 1000).toFixed(1)} s: ${manifest.dialect} database ${formatBytes(manifest.database.bytes)} (sha256 ${manifest.database.sha256.slice(0, 16)}…), ${blobs}.${key}\n`;
}

function restoreSummary(report: RestoreReport, migrationsApplied: number): string {
  const lines = [
    `Restored the backup of ${report.manifest.createdAt} (Socle ${report.manifest.socleVersion}) into ${report.target} in ${(report.durationMs / 1000).toFixed(1)} s.`,
    ...report.movedAside.map((aside) => `What was there before is kept in ${aside}.`),
    migrationsApplied === 0
      ? 'Its schema is up to date.'
      : `Applied ${migrationsApplied} migration(s) the backup did not have yet.`,
  ];
  return `${lines.join('\n')}\n`;
}

function formatBytes(bytes: number): string {
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/**
 * `socle shards move <org> <shard>`: moves an organization's rows to another shard while it keeps
 * serving (see moveTenant); prints the report (rows per table, copy and freeze times) as JSON.
 */
export async function moveShard(
  configFile: string | undefined,
  tenantId: string,
  shard: string,
): Promise<number> {
  const { config, modules } = await loadAll(configFile);
  if (config.shards.length === 0 || config.databaseUrl === undefined) {
    process.stderr.write('socle shards move needs DATABASE_URL and SHARDS (see "socle help config").\n');
    return EXIT.usage;
  }
  const log = createLogger(
    { ...config, logLevel: config.logLevel === 'info' ? 'warn' : config.logLevel },
    process.stderr,
  );
  const report = await moveTenant({ config, log, modules, tenantId, to: shard });
  process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
  return EXIT.ok;
}
