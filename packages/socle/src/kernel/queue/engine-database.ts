import type { Db } from 'pg-boss';
import type { Privilege, SqlConnection } from '../db/backend.js';
import type { Database } from '../db/index.js';

/** The slice of a Kysely transaction (or Kysely instance) that can run a raw statement. */
export interface QueryExecutorLike {
  executeQuery(query: {
    sql: string;
    parameters: readonly unknown[];
    query: { kind: 'RawNode' };
    queryId: { queryId: string };
  }): Promise<{ rows: readonly unknown[] }>;
}

/**
 * pg-boss's statements through a caller's transaction: what makes enqueue transactional (the job
 * commits or rolls back with the business write). pg-boss ships `fromKysely`; this is the same
 * few lines typed against Socle's transaction without pulling pg-boss types into modules.
 */
export function transactionExecutor(trx: unknown): Db {
  const executor = trx as QueryExecutorLike;
  return {
    async executeSql(text, values) {
      const result = await executor.executeQuery({
        sql: text,
        parameters: values ?? [],
        query: { kind: 'RawNode' },
        queryId: { queryId: 'socle-jobs' },
      });
      return { rows: [...result.rows] };
    },
  };
}

/**
 * A raw connection's open transaction as a job executor: what lets the privacy hooks, which work
 * as the owner on a connection rather than through Kysely, enqueue a job that commits or rolls
 * back with their own writes (an organization's deletion and the job that removes its files).
 *
 * @example
 * await jobs.enqueue(connectionExecutor(connection), 'tenancy.finishOrganizationDeletion', { organizationId });
 */
export function connectionExecutor(connection: SqlConnection): QueryExecutorLike {
  return {
    executeQuery: async ({ sql, parameters }) => ({ rows: (await connection.query(sql, parameters)).rows }),
  };
}

/**
 * pg-boss's statements through Socle's embedded database: each statement takes the one PGlite
 * session through the kernel's mutex (so it never lands inside another caller's transaction) as
 * `privilege`. Statements without parameters may be scripts (pg-boss's locked BEGIN … COMMIT
 * blocks): they return the rows of every statement, and an aborted script is rolled back so the
 * shared session is usable again (what a pool gets by discarding the connection).
 */
export function embeddedEngineDatabase(db: Database, privilege: Privilege): Db {
  const engineDb: Db = {
    executeSql(text, values) {
      return db.withConnection(async (connection) => {
        if (values !== undefined && values.length > 0) return connection.query(text, values);
        try {
          return { rows: await connection.executeWithRows(text) };
        } catch (error) {
          await connection.execute('rollback').catch(() => undefined);
          throw error;
        }
      }, privilege);
    },
  };
  const listen = db.listen;
  if (listen !== undefined) {
    engineDb.listen = async (channel, onNotification, onReconnect) => {
      const unsubscribe = await listen(channel, onNotification);
      // In process there is nothing to reconnect; pg-boss fetches once to cover the gap.
      onReconnect();
      return { close: unsubscribe };
    };
  }
  return engineDb;
}
