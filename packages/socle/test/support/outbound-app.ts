import {
  createOutboundModule,
  defineJob,
  defineModule,
  defineProvider,
  jobIdempotencyKey,
  type OutboundClient,
  type OutboundServices,
  type ProviderOptions,
  type RunningJob,
} from '../../src/index.js';

/**
 * A telehealth-like app on the outbound module: a route and a job creating "meetings" on a video
 * provider, and a job charging a payment provider (no breaker) with a key derived from the job.
 */
export function createOutboundApp(
  urls: { video: string; payments: string },
  video: Partial<ProviderOptions> = {},
) {
  const videoProvider = defineProvider('video', { baseUrl: urls.video, retry: false, ...video });
  const paymentsProvider = defineProvider('payments', {
    baseUrl: urls.payments,
    breaker: false,
    retry: { maxAttempts: 2, initialDelayMs: 1, maxDelayMs: 1 },
  });
  /** What job handlers saw, in order. */
  const attempts: { job: string; attempt: number }[] = [];
  const record = (job: RunningJob) => attempts.push({ job: job.name, attempt: job.attempt });
  interface Services {
    readonly video: OutboundClient;
    readonly payments: OutboundClient;
  }
  const module = defineModule<unknown, Services>({
    name: 'telehealth',
    dependsOn: ['outbound'],
    setup(context) {
      const { outbound } = context.servicesOf<OutboundServices>('outbound');
      return { video: outbound.client(videoProvider), payments: outbound.client(paymentsProvider) };
    },
    routes(app, { services }) {
      app.post('/telehealth/meetings', async () => {
        const answer = await services.video.request({
          method: 'POST',
          path: 'meetings',
          json: { topic: 'consultation' },
          operation: 'meetings.create',
        });
        return answer.json();
      });
    },
    jobs: {
      createMeeting: defineJob({
        maxAttempts: 3,
        backoff: false,
        async handler({ job }, services: Services) {
          record(job);
          await services.video.request({
            method: 'POST',
            path: 'meetings',
            json: { topic: 'follow-up' },
            idempotencyKey: jobIdempotencyKey(job, 'meeting'),
            operation: 'meetings.create',
          });
        },
      }),
      charge: defineJob({
        maxAttempts: 3,
        backoff: false,
        async handler({ job }, services: Services) {
          record(job);
          await services.payments.request({
            method: 'POST',
            path: 'charges',
            json: { amount: 30 },
            idempotencyKey: jobIdempotencyKey(job, 'charge'),
            operation: 'charges.create',
          });
        },
      }),
    },
  });
  return { modules: [createOutboundModule(), module], attempts };
}
