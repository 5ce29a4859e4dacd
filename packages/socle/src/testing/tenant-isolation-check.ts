import type { Database } from '../kernel/db/index.js';
import type { ModuleDefinition } from '../kernel/modules/index.js';

/** A table that does not isolate tenants, and what it lacks. */
export interface IsolationProblem {
  readonly table: string;
  readonly problem: string;
}

/**
 * Lists every table in the schemas of `modules` that lacks row-level security enabled, forced,
 * and at least one policy, unless the module declares it in `globalTables` with a reason; and
 * every declared global table that does not exist (a stale allow-list hides nothing).
 */
export async function findTenantIsolationProblems(
  db: Database,
  modules: readonly Pick<ModuleDefinition, 'name' | 'globalTables'>[],
): Promise<IsolationProblem[]> {
  const schemas = modules.map((module) => module.name);
  const { rows } = await db.withConnection(
    (connection) =>
      connection.query<{
        schema: string;
        table: string;
        enabled: boolean;
        forced: boolean;
        policies: number;
        parent: string | null;
      }>(
        `select n.nspname as schema, c.relname as table, c.relrowsecurity as enabled, c.relforcerowsecurity as forced,
                (select count(*)::int from pg_policy p where p.polrelid = c.oid) as policies,
                (select parent.relname from pg_inherits i join pg_class parent on parent.oid = i.inhparent
                  where i.inhrelid = c.oid and c.relispartition) as parent
           from pg_class c join pg_namespace n on n.oid = c.relnamespace
          where c.relkind in ('r', 'p') and n.nspname = any($1::text[])
          order by 1, 2`,
        [schemas],
      ),
    'owner',
  );
  const problems: IsolationProblem[] = [];
  const seen = new Set<string>();
  for (const row of rows) {
    const name = `${row.schema}.${row.table}`;
    seen.add(name);
    const module = modules.find((candidate) => candidate.name === row.schema);
    // A partition of a table declared global (dated partitions created at run time) is global too.
    const reason =
      module?.globalTables?.[row.table] ??
      (row.parent === null ? undefined : module?.globalTables?.[row.parent]);
    if (reason !== undefined) {
      if (reason.trim().length < 10)
        problems.push({ table: name, problem: 'is declared global without a real reason' });
      continue;
    }
    const missing = [
      row.enabled ? undefined : 'row level security is not enabled',
      row.forced ? undefined : 'row level security is not forced (the owner would bypass it)',
      row.policies > 0 ? undefined : 'has no policy',
    ].filter((item): item is string => item !== undefined);
    if (missing.length > 0) problems.push({ table: name, problem: missing.join('; ') });
  }
  for (const module of modules) {
    for (const table of Object.keys(module.globalTables ?? {})) {
      if (!seen.has(`${module.name}.${table}`)) {
        problems.push({ table: `${module.name}.${table}`, problem: 'is declared global but does not exist' });
      }
    }
  }
  return problems;
}
