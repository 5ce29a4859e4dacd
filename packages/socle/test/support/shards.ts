import pg from 'pg';
import type { Socle } from '../../src/index.js';
import type { TestUser } from '../../src/testing/index.js';
import { callAs } from './api-client.js';

/**
 * The rows of one statement run on the database `url` names, as the user it names (the superuser
 * in these tests: beneath row-level security, so a test sees what each database really holds).
 */
export async function rowsOn(url: string | undefined, text: string, values: readonly unknown[] = []) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text, values as unknown[])).rows;
  } finally {
    await client.end();
  }
}

/**
 * Places an organization that has no rows yet on `shard`: its directory row on the primary, what
 * `socle shards move` writes for an organization without data.
 */
export async function placeOnShard(
  socle: { readonly database: { readonly url?: string | undefined } },
  organizationId: string,
  shard: string,
): Promise<void> {
  await rowsOn(socle.database.url, 'insert into socle.tenant_shards (tenant_id, shard) values ($1, $2)', [
    organizationId,
    shard,
  ]);
}

/**
 * A Stripe checkout of the test catalog's `coins-500` by `user` in `organizationId` (the payments
 * fixture's catalog): its response, and the payment's id and provider session once it is 201.
 */
export async function startCheckout(
  socle: Pick<Socle, 'app'>,
  user: Pick<TestUser, 'token'>,
  organizationId: string,
) {
  const response = await callAs(socle, user, 'POST', '/payments/checkout', {
    orgId: organizationId,
    payload: {
      productId: 'coins-500',
      successUrl: 'https://app.test/ok',
      cancelUrl: 'https://app.test/cancel',
    },
  });
  const body =
    response.statusCode === 201 ? (response.json() as { id: string; providerReference: string }) : undefined;
  return { response, paymentId: body?.id, sessionId: body?.providerReference };
}
