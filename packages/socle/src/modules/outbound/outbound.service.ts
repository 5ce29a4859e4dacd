import { createHash } from 'node:crypto';
import { Agent } from 'undici';
import type { Clock, Logger, Metrics, RateLimiter, RunningJob } from '../../kernel/index.js';
import { outboundErrors } from './outbound.errors.js';
import {
  type CircuitStateName,
  createOutboundClient,
  type OutboundClient,
  type ProviderClient,
} from './outbound-client.js';
import { createOutboundMetrics } from './outbound-metrics.js';
import type { ProviderDefinition } from './provider.js';

/** The outbound module's services: the node's clients, one per declared provider. */
export interface Outbound {
  /**
   * The client of `provider`, built on first use and then shared by every caller of this node
   * (one breaker, one concurrency cap, one token cache). Its fallbacks get theirs too.
   *
   * @example
   * const zoom = context.servicesOf<OutboundServices>('outbound').outbound.client(zoomProvider);
   * const meeting = (await zoom.request({ method: 'POST', path: 'users/me/meetings', json, idempotencyKey, operation: 'meetings.create' })).json();
   */
  client(provider: ProviderDefinition): OutboundClient;
  /** Each provider used so far and its circuit state: for an operator's page, never for `/readyz`. */
  circuits(): Record<string, CircuitStateName>;
  /**
   * Where providers with `tenant-key` auth find the calling organization's key (the
   * `outbound_credentials` module sets it up).
   */
  useTenantKeys(source: (provider: string) => Promise<string | undefined>): void;
  /** Closes the connections (the module's `onStop`). */
  close(): Promise<void>;
}

export interface CreateOutboundOptions {
  readonly rateLimiter: RateLimiter;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly clock: Clock;
  /** The id of the inbound request being served, if any (logged with failed attempts). */
  readonly requestId?: () => string | undefined;
}

/**
 * A key that is the same on every attempt of `job` and differs per `step`: what to send as
 * `idempotencyKey` from a job, so the provider applies the effect once however often the job runs
 * (a crash after the provider's answer and before the job's commit included).
 *
 * @example
 * await zoom.request({ method: 'POST', path: 'users/me/meetings', json, idempotencyKey: jobIdempotencyKey(job, 'meeting') });
 */
export function jobIdempotencyKey(job: Pick<RunningJob, 'idempotencyKey'>, step: string): string {
  return createHash('sha256').update(`${job.idempotencyKey}\u0000${step}`).digest('base64url');
}

export function createOutbound(options: CreateOutboundOptions): Outbound {
  // Keep-alive connections to every provider of this node; per-origin pools.
  const dispatcher = new Agent({ keepAliveTimeout: 10_000, connections: 128 });
  const metrics = createOutboundMetrics(options.metrics);
  const clients = new Map<string, { provider: ProviderDefinition; client: ProviderClient }>();
  const requestId = options.requestId ?? (() => undefined);
  let tenantKeys: (provider: string) => Promise<string | undefined> = async () => undefined;
  const tenantKey = (provider: string) => tenantKeys(provider);

  const clientOf = (provider: ProviderDefinition): ProviderClient => {
    const known = clients.get(provider.name);
    if (known !== undefined) {
      if (known.provider !== provider)
        throw outboundErrors.invalidProvider(
          provider.name,
          'declared twice: declare a provider once and share it',
        );
      return known.client;
    }
    const client = createOutboundClient(provider, {
      dispatcher,
      rateLimiter: options.rateLimiter,
      metrics,
      log: options.log,
      clock: options.clock,
      requestId,
      clientOf,
      tenantKey,
    });
    clients.set(provider.name, { provider, client });
    return client;
  };

  return {
    client: clientOf,
    circuits: () =>
      Object.fromEntries([...clients].map(([name, { client }]) => [name, client.circuitState()])),
    useTenantKeys(source) {
      tenantKeys = source;
    },
    close: () => dispatcher.close(),
  };
}
