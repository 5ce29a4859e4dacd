import { Type } from '@fastify/type-provider-typebox';
import {
  type ConfigurationEntry,
  type HttpServer,
  type NodeHealth,
  routeSecurity,
} from '../../kernel/index.js';
import { User } from './accounts.routes.js';
import type { AccountService } from './accounts.service.js';
import { requireOperator } from './operator-access.hooks.js';

/** The query of an operator list: a search, a page size and the cursor of the previous page. */
export function operatorListQuery(cursor: string) {
  return Type.Object(
    {
      search: Type.Optional(Type.String({ maxLength: 200, description: 'part of the text shown, any case' })),
      limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
      after: Type.Optional(Type.String({ minLength: 1, maxLength: 254, description: cursor })),
    },
    { additionalProperties: false },
  );
}

const AccountSummary = Type.Object({
  ...User.properties,
  twoFactor: Type.Boolean({ description: 'two-factor authentication (TOTP) is on' }),
  activeSessions: Type.Integer({ description: 'sessions neither revoked nor expired' }),
});

/** Every account, for operators holding `OPERATOR_TOKEN`. */
export function registerOperatorAccountRoutes(app: HttpServer, accounts: AccountService): void {
  app.get(
    '/operator/users',
    {
      schema: {
        tags: ['identity'],
        security: routeSecurity.operator,
        summary: 'Every account, in email order, page after page (operator token)',
        querystring: operatorListQuery('`next` of the previous page (the last email it listed)'),
        response: {
          200: Type.Object({
            users: Type.Array(AccountSummary),
            next: Type.Union([Type.String(), Type.Null()], { description: 'the `after` of the next page' }),
          }),
        },
      },
    },
    async (request) => {
      requireOperator(request);
      const { search, after, limit = 50 } = request.query;
      return accounts.listAll({ search, after, limit });
    },
  );
}

/**
 * The configuration in effect (kernel and every module), read-only, credentials masked: the kernel
 * describes it (it knows which settings are secrets); identity serves it as the owner of the
 * operator token that guards it.
 */
export function registerOperatorConfigurationRoute(
  app: HttpServer,
  configuration: () => readonly ConfigurationEntry[],
): void {
  const Nullable = (schema: ReturnType<typeof Type.String>) => Type.Union([schema, Type.Null()]);
  app.get(
    '/operator/configuration',
    {
      schema: {
        tags: ['identity'],
        security: routeSecurity.operator,
        summary: 'Every setting in effect, credentials masked (operator token)',
        response: {
          200: Type.Object({
            settings: Type.Array(
              Type.Object({
                env: Type.String(),
                fileKey: Type.String(),
                module: Nullable(Type.String({ description: "the declaring module; null: the kernel's" })),
                description: Type.String(),
                secret: Type.Boolean({ description: 'a credential: its value is never shown' }),
                set: Type.Boolean(),
                isDefault: Type.Boolean(),
                value: Nullable(
                  Type.String({ description: 'JSON text; null for a secret or an unset setting' }),
                ),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      requireOperator(request);
      return {
        settings: configuration().map((entry) => ({ ...entry, module: entry.module ?? null })),
      };
    },
  );
}

const Count = Type.Number({ minimum: 0 });

/**
 * The health of every node of the fleet (the console's Health page): each node's last summary of
 * its metrics, which the kernel has every node publish on the bus, so the node that answers speaks
 * for all; served here, by the owner of the operator token that guards it.
 */
export function registerOperatorFleetHealthRoute(
  app: HttpServer,
  fleetHealth: () => readonly NodeHealth[],
): void {
  app.get(
    '/operator/health/nodes',
    {
      schema: {
        tags: ['operations'],
        security: routeSecurity.operator,
        summary:
          "Every node's request, error, job and connection counters, as last reported (operator token)",
        description:
          'Counters are cumulative since the node started (`startedAt`): rates are differences between two reads of the same `node`, divided by the difference of `at`. A node that has not reported for a few intervals is `gone` (stopped or cut off); it is forgotten after 10 minutes.',
        response: {
          200: Type.Object({
            nodes: Type.Array(
              Type.Object({
                node: Type.String({ description: 'unique per process start' }),
                host: Type.String(),
                pid: Type.Integer(),
                startedAt: Type.String({ format: 'date-time' }),
                at: Type.Number({
                  description: "when the node read its counters (ms since the epoch, the node's clock)",
                }),
                ageMs: Type.Number({ description: 'since this node received that report' }),
                gone: Type.Boolean(),
                self: Type.Boolean({ description: 'the node that answered' }),
                requests: Count,
                errors: Type.Number({ minimum: 0, description: 'requests answered 5xx' }),
                buckets: Type.Array(Type.Tuple([Count, Count]), {
                  description:
                    'HTTP duration histogram, cumulative: [upper bound in seconds, count], finite bounds only (+Inf: `requests`)',
                }),
                jobsFinished: Count,
                connections: Count,
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      requireOperator(request);
      return {
        nodes: fleetHealth().map((node) => ({
          ...node,
          buckets: node.buckets.map(([bound, count]): [number, number] => [bound, count]),
        })),
      };
    },
  );
}
