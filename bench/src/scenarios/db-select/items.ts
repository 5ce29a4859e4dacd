import { Type } from 'socle';

/** Rows in `bench.items`; requests pick ids uniformly from 1 to this. */
export const ITEM_COUNT = 10_000;

/** Name of the Socle module, and so of the Postgres schema holding `items`. */
export const BENCH_SCHEMA = 'bench';

/**
 * Creates and seeds `items` in the current schema. Socle runs it as the bench module's migration
 * (inside schema `bench`); the PGlite baseline runs it itself after `set search_path to bench`.
 */
export const CREATE_ITEMS_SQL = `
create table items (
  id integer primary key,
  name text not null,
  price_cents integer not null,
  created_at timestamptz not null default now()
);
-- Fixed timestamps: on PGlite each server seeds its own copy, and both must answer the same bytes.
insert into items (id, name, price_cents, created_at)
  select n, 'item ' || n, (n * 37) % 100000, timestamptz '2025-01-01 00:00:00+00' + n * interval '1 minute'
  from generate_series(1, ${ITEM_COUNT}) as n;
-- Statistics now, and no autovacuum later: a background vacuum of the fresh rows would steal
-- CPU from whichever server happens to be under load at that moment.
analyze items;
alter table items set (autovacuum_enabled = false);
`;

/**
 * The statement both servers run, column for column what Kysely compiles for the Socle route,
 * so the database does the same work on both sides.
 */
export const SELECT_ITEM_SQL =
  'select "id", "name", "price_cents" as "priceCents", "created_at" as "createdAt" from "bench"."items" where "id" = $1';

/** Path parameters of `GET /items/:id`. */
export const ItemParams = Type.Object({ id: Type.Integer({ minimum: 1 }) });

/** Response of `GET /items/:id`; both servers serialize with it (fast-json-stringify). */
export const Item = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  priceCents: Type.Integer(),
  createdAt: Type.String({ format: 'date-time' }),
});

/** A row as the driver returns it for {@link SELECT_ITEM_SQL}. */
export interface ItemRow {
  id: number;
  name: string;
  priceCents: number;
  createdAt: Date;
}

/** The table as Kysely sees it in the Socle module. */
export interface ItemTable {
  id: number;
  name: string;
  price_cents: number;
  created_at: Date;
}

/** The response body of a row; both servers call it, so both do the same work. */
export function toItem(row: ItemRow): Type.Static<typeof Item> {
  return { id: row.id, name: row.name, priceCents: row.priceCents, createdAt: row.createdAt.toISOString() };
}

/** A random existing id, the same distribution for both servers. */
export function randomItemId(): number {
  return 1 + Math.floor(Math.random() * ITEM_COUNT);
}
