import { setTimeout as sleep } from 'node:timers/promises';
import { expect, it } from 'vitest';
import { defineModule, sql, Type } from '../src/index.js';
import { createTestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

describeEachDatabase('Shutdown waits for handlers whose client hung up', (target) => {
  it('keeps the database open until the handler has finished', async () => {
    const outcomes: string[] = [];
    const slow = defineModule({
      name: 'slow_work',
      routes(app, { db }) {
        app.get(
          '/slow-work',
          { schema: { querystring: Type.Object({ ms: Type.Integer() }) } },
          async (request) => {
            await sleep(request.query.ms);
            try {
              await sql`select 1`.execute(db.kysely);
              outcomes.push('query ran');
            } catch (error) {
              outcomes.push(`query failed: ${(error as Error).message}`);
            }
            return { ok: true };
          },
        );
      },
    });
    const socle = await createTestSocle(target, { modules: [slow], config: { shutdownTimeoutMs: 5000 } });
    const url = await socle.listen();
    const client = new AbortController();
    const request = fetch(`${url}/slow-work?ms=600`, { signal: client.signal }).catch(
      (error: Error) => error.name,
    );
    await sleep(150);
    client.abort();
    expect(await request).toBe('AbortError');
    const result = await socle.close();
    expect(outcomes).toEqual(['query ran']);
    expect(result).toEqual({ drained: true });
    await socle.dispose();
  });
});
