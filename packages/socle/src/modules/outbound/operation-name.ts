/**
 * The metric and log name of a call made through `client.fetch` (an official SDK's request, which
 * names no operation): its method and path without the query, each segment that is an object's id
 * replaced by `:id`, so `POST v1/refunds` and `GET v1/checkout/sessions/:id` stay a handful of
 * label values however many objects there are.
 *
 * A segment is taken for an id when it is a number, a UUID, or at least 12 characters with a digit
 * (Stripe's `cs_test_a1B2…`, `pi_3N…`, a Play purchase token); `v1`, `oauth2` or a product id such
 * as `coins_500` stay as they are.
 */
export function operationOfPath(method: string, path: string): string {
  const query = path.indexOf('?');
  const bare = query === -1 ? path : path.slice(0, query);
  const segments = bare.split('/').map((segment) => (isIdSegment(segment) ? ':id' : segment));
  return `${method} ${segments.join('/')}`;
}

const NUMBER = /^\d+$/;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DIGIT = /\d/;

function isIdSegment(segment: string): boolean {
  return NUMBER.test(segment) || UUID.test(segment) || (segment.length >= 12 && DIGIT.test(segment));
}
