import type { Config } from '../kernel/config/index.js';
import { createScopeAccess } from '../kernel/context/index.js';
import { applyMigrations, type Migration, openDatabase } from '../kernel/db/index.js';
import type { Logger } from '../kernel/log/index.js';
import { createMetrics } from '../kernel/metrics/index.js';
import type { ModuleDefinition } from '../kernel/modules/index.js';
import { createJobEngine } from '../kernel/queue/index.js';
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
    await createJobEngine({
      db,
      config,
      log,
      metrics: createMetrics(),
      scope: createScopeAccess(),
      modules,
    }).install();
    return applied;
  } finally {
    await db.close();
  }
}
