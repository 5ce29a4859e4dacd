import { AsyncLocalStorage } from 'node:async_hooks';
import { defineModule, type ModuleDefinition } from '../../kernel/index.js';
import { registerOutboundOperatorRoutes } from './outbound.routes.js';
import { createOutbound, type Outbound } from './outbound.service.js';
import { type OutboundSettings, outboundSettings } from './outbound.settings.js';

/** What the outbound module gives modules and apps: `context.servicesOf<OutboundServices>('outbound')`. */
export interface OutboundServices {
  readonly outbound: Outbound;
  /** Provider credentials and addresses from the environment (`OPENAI_API_KEY`, `ZOOM_*`…). */
  readonly settings: OutboundSettings;
}

export type OutboundModule = ModuleDefinition<unknown, OutboundServices, OutboundSettings>;

/**
 * Outbound calls to third-party APIs (OpenAI, Zoom, Stripe…) through declared providers: apps
 * declare each provider once (`defineProvider`), and take its client from this module's services.
 * The module owns no table; the kernel gives it the rate limiter (shared through Redis when
 * `REDIS_URL` is set), metrics, log and clock. See docs/outbound.md.
 *
 * @example
 * defineModule({
 *   name: 'telehealth',
 *   dependsOn: ['outbound'],
 *   setup(context) {
 *     const zoom = context.servicesOf<OutboundServices>('outbound').outbound.client(zoomProvider);
 *     return { meetings: createMeetingService({ zoom }) };
 *   },
 * });
 */
export function createOutboundModule(): OutboundModule {
  // The id of the inbound request each outbound call serves, for the log line of a failed attempt.
  const requestIds = new AsyncLocalStorage<string>();
  return defineModule({
    name: 'outbound',
    settings: outboundSettings,
    setup(context) {
      return {
        settings: context.settings,
        outbound: createOutbound({
          rateLimiter: context.rateLimiter,
          metrics: context.metrics,
          log: context.log.child({ module: 'outbound' }),
          clock: context.clock,
          requestId: () => requestIds.getStore(),
        }),
      };
    },
    configureHttp(app) {
      app.addHook('onRequest', (request, _reply, done) => requestIds.run(request.id, done));
    },
    routes(app, context) {
      registerOutboundOperatorRoutes(app, context.services.outbound);
    },
    async onStop({ services }) {
      await services.outbound.close();
    },
  });
}
