import { Type } from '@fastify/type-provider-typebox';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireOperator } from '../identity/index.js';
import type { Outbound } from './outbound.service.js';

const Circuit = Type.Object({
  provider: Type.String(),
  state: Type.Union(
    [Type.Literal('closed'), Type.Literal('open'), Type.Literal('half-open'), Type.Literal('isolated')],
    {
      description: 'open: calls fail fast; half-open: one probe call decides',
    },
  ),
});

/**
 * `GET /operator/outbound/circuits`: each provider this node has called and its circuit state,
 * for operators (`OPERATOR_TOKEN`). Never part of `/readyz`: a provider that is down must not take
 * the API out of the load balancer.
 */
export function registerOutboundOperatorRoutes(app: HttpServer, outbound: Outbound): void {
  app.get(
    '/operator/outbound/circuits',
    {
      schema: {
        tags: ['outbound'],
        summary: 'The circuit breaker state of each outbound provider on this node (operator token)',
        security: routeSecurity.operator,
        response: { 200: Type.Object({ circuits: Type.Array(Circuit) }) },
      },
    },
    async (request) => {
      requireOperator(request);
      return {
        circuits: Object.entries(outbound.circuits())
          .map(([provider, state]) => ({ provider, state }))
          .sort((a, b) => a.provider.localeCompare(b.provider)),
      };
    },
  );
}
