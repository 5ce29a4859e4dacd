import type { Config } from '../kernel/config/index.js';
import { createScopeAccess } from '../kernel/context/index.js';
import { applyMigrations, type Migration, openDatabase } from '../kernel/db/index.js';
import type { Logger } from '../kernel/log/index.js';
import { createMetrics } from '../kernel/metrics/index.js';
import type { ModuleDefinition } from '../kernel/modules/index.js';
import { createJobEngine } from '../kernel/queue/index.js';
import { installShards } from '../kernel/shards/index.js';
import { collectMigrations } from '../kernel/socle.js';

/**
 * Applies the modules' pending migrations and installs the job engine's tables, then closes the
 * database: what `socle migrate` does, and what the supervisor of `socle start --processes N` does
 * once before starting its processes. Returns the migrations applied now.
 */
export async function installSchema(
  config: Config,
  modules: readonly ModuleDefinition[],
  log: Logger,
): Promise<readonly Migration[]> {
  const db = await openDatabase({ config, log });
  try {
    const applied = await applyMigrations(db, collectMigrations(modules), log, {
      appRole: config.databaseAppRole,
    });
    const installJobs = (target: typeof db, targetConfig: Config) =>
      createJobEngine({
        db: target,
        config: targetConfig,
        log,
        metrics: createMetrics(),
        scope: createScopeAccess(),
        modules,
      }).install();
    await installJobs(db, config);
    // With SHARDS: the directory here, and the same migrations and job tables on every shard.
    await installShards({
      config,
      log,
      primary: db,
      migrations: collectMigrations(modules),
      modules,
      installJobs,
    });
    return applied;
  } finally {
    await db.close();
  }
}
