import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type HttpServer, JOB_QUEUES, JOB_STATES, type Jobs, routeSecurity } from '../../kernel/index.js';
import { requireOperator } from '../identity/index.js';
import { OrgHeaders, requireOrgRole } from '../tenancy/index.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const JobState = Type.Union(
  JOB_STATES.map((state) => Type.Literal(state)),
  { description: 'created/retry: queued; active: running; failed: dead after its last attempt' },
);
const Job = Type.Object({
  id: Type.String({ format: 'uuid' }),
  name: Type.String({ description: 'module.jobName' }),
  queue: Type.String(),
  state: Type.String(),
  priority: Type.Integer(),
  attempts: Type.Integer(),
  maxAttempts: Type.Integer(),
  tenantId: NullableString,
  payload: Type.Unknown(),
  progress: Type.Unknown(),
  error: Type.Unknown(),
  createdAt: Type.String({ format: 'date-time' }),
  startAfter: Type.String({ format: 'date-time' }),
  startedAt: NullableString,
  completedAt: NullableString,
});
const ListQuery = Type.Object(
  {
    state: Type.Optional(JobState),
    queue: Type.Optional(Type.Union(JOB_QUEUES.map((queue) => Type.Literal(queue)))),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    after: Type.Optional(
      Type.String({ format: 'uuid', description: 'id of the last job of the previous page' }),
    ),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
/** What `GET …/jobs/counts` answers, and what the realtime operator feed pushes (`jobs` event). */
const JobCounts = Type.Object({
  queues: Type.Array(
    Type.Object({
      queue: Type.String(),
      created: Type.Integer({ description: 'queued, never run' }),
      retry: Type.Integer({ description: 'queued again after a failed attempt' }),
      active: Type.Integer({ description: 'running' }),
      failed: Type.Integer({ description: 'dead after their last attempt' }),
      oldestWaitingAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
        description: 'creation time of the oldest created or retry job',
      }),
    }),
  ),
});

/**
 * Who may use one set of job routes and which jobs they see: `tenantOf` checks the caller and
 * returns the tenant whose jobs are visible (null: every tenant's and global ones).
 */
interface JobAudience {
  readonly prefix: string;
  /** Said at the end of each route's summary, e.g. `(admin)`. */
  readonly who: string;
  readonly headers?: typeof OrgHeaders;
  /** The credentials the routes accept, for the OpenAPI document. */
  readonly security: (typeof routeSecurity)[keyof typeof routeSecurity];
  tenantOf(request: FastifyRequest): string | null;
}

/** The four job routes (list, inspect, retry, cancel) for one audience. */
function registerJobRoutes(app: HttpServer, jobs: Jobs, audience: JobAudience): void {
  const { prefix, who, tenantOf, security } = audience;
  const headers = audience.headers === undefined ? {} : { headers: audience.headers };
  app.get(
    prefix,
    {
      schema: {
        tags: ['jobs'],
        summary: `Jobs in creation order, newest last ${who}`,
        security,
        ...headers,
        querystring: ListQuery,
        response: { 200: Type.Object({ jobs: Type.Array(Job) }) },
      },
    },
    async (request) => {
      const tenantId = tenantOf(request);
      const { state, queue, limit = 50, after } = request.query;
      return { jobs: await jobs.list({ tenantId, state, queue, limit, after }) };
    },
  );
  app.get(
    `${prefix}/counts`,
    {
      schema: {
        tags: ['jobs'],
        summary: `Jobs of each queue by state (created, retry, active, failed) and the oldest waiting ${who}`,
        security,
        ...headers,
        response: { 200: JobCounts },
      },
    },
    async (request) => ({ queues: await jobs.counts(tenantOf(request)) }),
  );
  const actions = [
    {
      path: '',
      method: 'GET',
      summary: 'One job',
      run: (id: string, tenantId: string | null) => jobs.get(id, tenantId),
    },
    {
      path: '/retry',
      method: 'POST',
      summary: 'Runs a failed (dead) or cancelled job again',
      run: (id: string, tenantId: string | null) => jobs.retry(id, tenantId),
    },
    {
      path: '/cancel',
      method: 'POST',
      summary: 'Cancels a queued or running job',
      run: (id: string, tenantId: string | null) => jobs.cancel(id, tenantId),
    },
  ] as const;
  for (const action of actions) {
    app.route({
      method: action.method,
      url: `${prefix}/:id${action.path}`,
      schema: {
        tags: ['jobs'],
        summary: `${action.summary} ${who}`,
        security,
        ...headers,
        params: IdParams,
        response: { 200: Job },
      },
      handler: async (request) => action.run(request.params.id, tenantOf(request)),
    });
  }
}

/**
 * Jobs of the current organization, for its admins: list by state and queue, inspect, retry,
 * cancel. Another organization's job answers 404, as if it did not exist.
 */
export function registerOrgJobRoutes(app: HttpServer, jobs: Jobs): void {
  registerJobRoutes(app, jobs, {
    prefix: '/org/jobs',
    who: '(admin of the current organization)',
    headers: OrgHeaders,
    security: routeSecurity.memberOrApiKey,
    tenantOf: (request) => requireOrgRole(request, 'admin').orgId,
  });
}

/**
 * Every tenant's jobs and global ones, for operators holding `OPERATOR_TOKEN` (in the
 * `X-Operator-Token` header: `Authorization` carries users' access tokens). Without the setting
 * these routes answer 404 (`requireOperator`).
 */
export function registerOperatorJobRoutes(app: HttpServer, jobs: Jobs): void {
  registerJobRoutes(app, jobs, {
    prefix: '/operator/jobs',
    who: '(operator token)',
    security: routeSecurity.operator,
    tenantOf(request) {
      requireOperator(request);
      return null;
    },
  });
}
