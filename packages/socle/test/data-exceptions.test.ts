import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineModule, sql, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

/**
 * A route that stores what it is given as a module's app would: an integer column, a timestamp
 * column, schemas that only say "integer" and "date-time". Values the schema lets through but the
 * database or JavaScript cannot hold (found by CryptoCare's fuzz gate: a price of 2^31, a leap
 * second in year 9999) must get a 400 naming the problem, and nothing written.
 */
const stock = defineModule({
  name: 'stock_probe',
  globalTables: { items: 'test fixture' },
  migrations: [
    {
      name: '0001_items.sql',
      sql: 'create table items (id serial primary key, quantity integer not null, due timestamptz);',
    },
  ],
  routes(app, { db }) {
    app.post(
      '/stock-probe/items',
      {
        schema: {
          body: Type.Object(
            { quantity: Type.Integer(), due: Type.Optional(Type.String({ format: 'date-time' })) },
            { additionalProperties: false },
          ),
        },
      },
      async (request, reply) => {
        const { quantity, due } = request.body;
        await db.transaction(async (trx) => {
          await sql`insert into stock_probe.items (quantity, due)
                    values (${quantity}, ${due === undefined ? null : new Date(due)})`.execute(trx);
        });
        return reply.code(201).send({ ok: true });
      },
    );
  },
});

describeEachDatabase('Values a schema lets through but nothing can store', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, { modules: [stock] });
  });
  afterAll(() => socle?.dispose());

  const post = (payload: object) => socle.app.inject({ method: 'POST', url: '/stock-probe/items', payload });
  const count = async () =>
    Number(
      (
        await socle.db.withConnection(
          (connection) => connection.query<{ n: string }>('select count(*) as n from stock_probe.items'),
          'owner',
        )
      ).rows[0]?.n,
    );

  it('answers 400 db.invalid_value to an integer out of its column’s range, writing nothing', async () => {
    expect((await post({ quantity: 3 })).statusCode).toBe(201);
    const response = await post({ quantity: 2 ** 31 });
    expect(response.statusCode, response.body).toBe(400);
    expect(response.headers['content-type']).toContain('application/problem+json');
    expect(response.json()).toMatchObject({ code: 'db.invalid_value', status: 400 });
    expect(response.json().detail).toContain('out of range for type integer');
    expect(await count()).toBe(1);
  });

  it('refuses a date-time JavaScript cannot hold (a leap second) at validation, naming the field', async () => {
    for (const due of ['9999-12-31T23:59:60Z', '2026-06-30T23:59:60+00:00']) {
      const response = await post({ quantity: 1, due });
      expect(response.statusCode, response.body).toBe(400);
      expect(response.json().errors).toEqual([
        { field: 'body/due', message: 'must match format "date-time"' },
      ]);
    }
    expect((await post({ quantity: 1, due: '2026-06-30T23:59:59+02:00' })).statusCode).toBe(201);
    expect(await count()).toBe(2);
  });
});
