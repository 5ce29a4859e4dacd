import type { JobEngine, JobQueueCounts } from '../queue/index.js';

/**
 * The job engines of an installation with `SHARDS`: the primary's and one per shard, each working
 * the job tables of its own database. A job is enqueued in the caller's transaction, so its row is
 * in the database that transaction runs on (a tenant's shard, for a tenant's work): the job commits
 * with the write that asked for it, and that database's engine runs it. Its handler acts for the
 * job's tenant, so its statements go to that tenant's shard (the current one, if it moved since).
 * Cron schedules fire on the primary's engine only.
 */
export function createShardedJobEngine(
  primary: JobEngine,
  shards: ReadonlyMap<string, JobEngine>,
  shardOf: (tenantId: string) => Promise<string | undefined>,
): JobEngine {
  const all = [primary, ...shards.values()];
  /** A tenant's view is on its shard's engine; an operator's (no tenant) on the primary's. */
  const engineOf = async (tenantId: string | null) => {
    if (tenantId === null) return primary;
    const name = await shardOf(tenantId);
    return (name === undefined ? undefined : shards.get(name)) ?? primary;
  };
  return {
    definitions: primary.definitions,
    metrics: primary.metrics,
    install: () => primary.install(),
    async start(queues) {
      for (const engine of all) await engine.start(queues);
    },
    async startWorkers() {
      for (const engine of all) await engine.startWorkers();
    },
    async stopWorkers(timeoutMs) {
      await Promise.all(all.map((engine) => engine.stopWorkers(timeoutMs)));
    },
    async stop() {
      await Promise.all(all.map((engine) => engine.stop()));
    },
    // The transaction given decides the database (see above): any engine writes through it.
    enqueue: (trx, name, payload, options) => primary.enqueue(trx, name, payload, options),
    enqueueMany: (trx, name, jobs) => primary.enqueueMany(trx, name, jobs),
    async runDueJobs(options) {
      const outcome = { completed: 0, failed: 0 };
      for (const engine of all) {
        const ran = await engine.runDueJobs(options);
        outcome.completed += ran.completed;
        outcome.failed += ran.failed;
      }
      return outcome;
    },
    // A tenant's counts are its shard's; an operator's (no tenant) add up every database's.
    async counts(tenantId) {
      if (tenantId !== null) return (await engineOf(tenantId)).counts(tenantId);
      return sumCounts(await Promise.all(all.map((engine) => engine.counts(null))));
    },
    list: async (filter) => (await engineOf(filter.tenantId)).list(filter),
    get: async (id, tenantId) => (await engineOf(tenantId)).get(id, tenantId),
    retry: async (id, tenantId) => (await engineOf(tenantId)).retry(id, tenantId),
    cancel: async (id, tenantId) => (await engineOf(tenantId)).cancel(id, tenantId),
  };
}

/** Per queue: the sum of each database's counts and the oldest of their oldest waiting jobs. */
function sumCounts(perEngine: readonly (readonly JobQueueCounts[])[]): JobQueueCounts[] {
  const byQueue = new Map<string, JobQueueCounts>();
  for (const row of perEngine.flat()) {
    const known = byQueue.get(row.queue);
    byQueue.set(
      row.queue,
      known === undefined
        ? row
        : {
            queue: row.queue,
            created: known.created + row.created,
            retry: known.retry + row.retry,
            active: known.active + row.active,
            failed: known.failed + row.failed,
            oldestWaitingAt:
              known.oldestWaitingAt === null ||
              (row.oldestWaitingAt !== null && row.oldestWaitingAt < known.oldestWaitingAt)
                ? row.oldestWaitingAt
                : known.oldestWaitingAt,
          },
    );
  }
  return [...byQueue.values()];
}
