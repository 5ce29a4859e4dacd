import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireOperator } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';
import type { PaymentEvent, PaymentEventsService } from './payment-events.service.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const PaymentEventSchema = Type.Object({
  provider: Type.String(),
  eventId: Type.String(),
  orgId: Type.String({ format: 'uuid' }),
  paymentId: Type.Union([Type.String({ format: 'uuid' }), Type.Null()]),
  type: Type.String(),
  status: Type.Union([Type.Literal('applied'), Type.Literal('failed')]),
  outcome: Type.Union([Type.String(), Type.Null()], { description: 'What an applied event did' }),
  errorCode: NullableString,
  errorMessage: NullableString,
  failedAttempts: Type.Integer({ description: 'Deliveries or retries that failed' }),
  firstSeenAt: Type.String({ format: 'date-time' }),
  lastSeenAt: Type.String({ format: 'date-time', description: 'When it applied, or its last failure' }),
});
const ListQuery = Type.Object(
  {
    provider: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    status: Type.Optional(Type.Union([Type.Literal('applied'), Type.Literal('failed')])),
    since: Type.Optional(Type.String({ format: 'date-time', description: 'Last seen at or after' })),
    until: Type.Optional(
      Type.String({ format: 'date-time', description: 'Last seen before (the next page: `nextUntil`)' }),
    ),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
  },
  { additionalProperties: false },
);
const ListResponse = Type.Object({
  events: Type.Array(PaymentEventSchema),
  nextUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: '`until` of the next page, null on the last',
  }),
});
const EventParams = Type.Object({
  provider: Type.String({ minLength: 1, maxLength: 64 }),
  eventId: Type.String({ minLength: 1, maxLength: 255 }),
});
const RetryResponse = Type.Object({
  status: Type.Union([Type.Literal('applied'), Type.Literal('failed')]),
  outcome: Type.Optional(Type.String()),
  errorCode: Type.Optional(Type.String()),
  errorMessage: Type.Optional(Type.String()),
});

const serialize = (event: PaymentEvent) => ({
  ...event,
  firstSeenAt: event.firstSeenAt.toISOString(),
  lastSeenAt: event.lastSeenAt.toISOString(),
});
const filterOf = (query: {
  provider?: string | undefined;
  status?: 'applied' | 'failed' | undefined;
  since?: string | undefined;
  until?: string | undefined;
  limit?: number | undefined;
}) => ({
  provider: query.provider,
  status: query.status,
  since: query.since === undefined ? undefined : new Date(query.since),
  until: query.until === undefined ? undefined : new Date(query.until),
  limit: query.limit ?? 50,
});
const page = (events: PaymentEvent[], limit: number) => ({
  events: events.map(serialize),
  nextUntil: events.length < limit ? null : (events.at(-1) as PaymentEvent).lastSeenAt.toISOString(),
});

/**
 * The payments page's routes: provider events received (applied or failed) of the organization
 * (admins) or of every organization (operator token), filtered by provider, status and time, and
 * the retry of a failed one (audited like every POST).
 */
export function registerPaymentEventRoutes(app: HttpServer, events: PaymentEventsService): void {
  const admin = { tags: ['payments'], security: routeSecurity.memberOrApiKey, headers: OrgHeaders };
  const operator = { tags: ['payments'], security: routeSecurity.operator };

  app.get(
    '/org/payments/events',
    {
      schema: {
        ...admin,
        summary: "The organization's provider events, applied or failed, most recently seen first (admin)",
        querystring: ListQuery,
        response: { 200: ListResponse },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      const filter = filterOf(request.query);
      return page(await events.list(filter), filter.limit);
    },
  );

  app.post(
    '/org/payments/events/:provider/:eventId/retry',
    {
      schema: {
        ...admin,
        summary:
          'Applies a failed provider event again, from the event verified at its failure (admin); applied at most once whatever the redeliveries',
        params: EventParams,
        response: { 200: RetryResponse },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return await events.retry(request.params.provider, request.params.eventId);
    },
  );

  app.get(
    '/operator/payments/events',
    {
      schema: {
        ...operator,
        summary:
          "Every organization's provider events, applied or failed, most recently seen first (operator token)",
        querystring: ListQuery,
        response: { 200: ListResponse },
      },
    },
    async (request) => {
      requireOperator(request);
      const filter = filterOf(request.query);
      return page(await events.listAll(filter), filter.limit);
    },
  );

  app.post(
    '/operator/payments/events/:provider/:eventId/retry',
    {
      schema: {
        ...operator,
        summary: "Applies any organization's failed provider event again (operator token)",
        params: EventParams,
        response: { 200: RetryResponse },
      },
    },
    async (request) => {
      requireOperator(request);
      return await events.retryAny(request.params.provider, request.params.eventId);
    },
  );
}
