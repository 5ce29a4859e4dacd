import { Type } from 'socle';
import { ITEM_COUNT, type ItemTable } from '../db-select/items.js';

/** Name of the Socle module, and so of the Postgres schema holding the tenant table `items`. */
export const TENANT_SCHEMA = 'bench_tenant';

/** Slug of the organization the bench user acts in; the baseline finds its id by it. */
export const BENCH_ORG_SLUG = 'bench-org';

/**
 * A second tenant holding the same ids with other names. Without row-level security every id
 * would match two rows; with it, only the current organization's row is visible.
 */
export const OTHER_TENANT_ID = '00000000-0000-4000-8000-0000000000b2';

/**
 * The tenant table, written as docs/modules.md says: `tenant_id` defaulting to the current
 * tenant, row-level security enabled and forced, one policy on `socle.current_tenant_id()`.
 * Socle runs it as the bench module's migration (inside schema `bench_tenant`).
 */
export const CREATE_TENANT_ITEMS_SQL = `
create table items (
  id integer not null,
  tenant_id uuid not null default socle.current_tenant_id(),
  name text not null,
  price_cents integer not null,
  created_at timestamptz not null default now(),
  primary key (tenant_id, id)
);
alter table items enable row level security;
alter table items force row level security;
create policy tenant_isolation on items
  using (tenant_id = socle.current_tenant_id())
  with check (tenant_id = socle.current_tenant_id());
-- No autovacuum: a background vacuum of the fresh rows would steal CPU from whichever server
-- happens to be under load at that moment.
alter table items set (autovacuum_enabled = false);
`;

/**
 * Seeds ${ITEM_COUNT} items for the bench organization ($1) and the same ids for
 * {@link OTHER_TENANT_ID} ($2). Run as the owner (RLS does not apply to it), once the organization
 * exists; a later round finds the rows there and inserts nothing. Names, prices and fixed
 * timestamps are those of `db-select`, so both scenarios answer the same bodies.
 */
export const SEED_TENANT_ITEMS_SQL = `
insert into ${TENANT_SCHEMA}.items (tenant_id, id, name, price_cents, created_at)
  select tenant.id, n, tenant.prefix || n, (n * 37) % 100000,
    timestamptz '2025-01-01 00:00:00+00' + n * interval '1 minute'
  from (values ($1::uuid, 'item '), ($2::uuid, 'other tenant item ')) as tenant(id, prefix),
    generate_series(1, ${ITEM_COUNT}) as n
  on conflict do nothing`;

/** Fresh statistics after the seed (the owner's job too). */
export const ANALYZE_TENANT_ITEMS_SQL = `analyze ${TENANT_SCHEMA}.items`;

/**
 * The baseline's statement: Socle's column list (what Kysely compiles for the route) with the
 * tenant filter written by hand, since the baseline runs as the owner and no policy applies.
 */
export const SELECT_TENANT_ITEM_SQL = `select "id", "name", "price_cents" as "priceCents", "created_at" as "createdAt" from "${TENANT_SCHEMA}"."items" where "tenant_id" = $1 and "id" = $2`;

/** The tenant table as Kysely sees it in the Socle module. */
export interface TenantItemTable extends ItemTable {
  tenant_id: string;
}

/** Body of `PATCH /tenant-items/:id` (the `tenant-write` scenario): the item's new price. */
export const PriceChange = Type.Object(
  { priceCents: Type.Integer({ minimum: 0, maximum: 1_000_000 }) },
  { additionalProperties: false },
);

/** The baseline's write: Socle's UPDATE … RETURNING with the tenant filter written by hand. */
export const UPDATE_TENANT_ITEM_SQL = `update "${TENANT_SCHEMA}"."items" set "price_cents" = $3 where "tenant_id" = $1 and "id" = $2 returning "id", "name", "price_cents" as "priceCents", "created_at" as "createdAt"`;
