import { timingSafeEqual } from 'node:crypto';
import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import type { Config } from '../../kernel/config/index.js';
import type { HttpServer } from '../../kernel/http/index.js';
import type { Jobs } from '../../kernel/queue/index.js';
import { requireOrgRole } from '../tenancy/index.js';
import { jobsModuleErrors } from './jobs.errors.js';

/** The header carrying `OPERATOR_TOKEN`. */
export const OPERATOR_TOKEN_HEADER = 'x-operator-token';

const NullableString = Type.Union([Type.String(), Type.Null()]);
const JobState = Type.Union(
  ['created', 'retry', 'active', 'completed', 'cancelled', 'failed'].map((state) => Type.Literal(state)),
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
    queue: Type.Optional(Type.Union([Type.Literal('high'), Type.Literal('default'), Type.Literal('low')])),
    limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
    after: Type.Optional(
      Type.String({ format: 'uuid', description: 'id of the last job of the previous page' }),
    ),
  },
  { additionalProperties: false },
);
const IdParams = Type.Object({ id: Type.String({ format: 'uuid' }) });
const OrgHeaders = Type.Object({
  'x-org-id': Type.String({ format: 'uuid', description: 'The organization to act in' }),
});

/**
 * Jobs of the current organization, for its admins: list by state and queue, inspect, retry,
 * cancel. Another organization's job answers 404, as if it did not exist.
 */
export function registerOrgJobRoutes(app: HttpServer, jobs: Jobs): void {
  app.get(
    '/org/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: "The current organization's jobs, by id (admin)",
        headers: OrgHeaders,
        querystring: ListQuery,
        response: { 200: Type.Object({ jobs: Type.Array(Job) }) },
      },
    },
    async (request) => {
      const org = requireOrgRole(request, 'admin');
      const { state, queue, limit = 50, after } = request.query;
      return { jobs: await jobs.list({ tenantId: org.orgId, state, queue, limit, after }) };
    },
  );
  app.get(
    '/org/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'One job (admin)',
        headers: OrgHeaders,
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (request) => jobs.get(request.params.id, requireOrgRole(request, 'admin').orgId),
  );
  app.post(
    '/org/jobs/:id/retry',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Runs a failed (dead) or cancelled job again (admin)',
        headers: OrgHeaders,
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (request) => jobs.retry(request.params.id, requireOrgRole(request, 'admin').orgId),
  );
  app.post(
    '/org/jobs/:id/cancel',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Cancels a queued or running job (admin)',
        headers: OrgHeaders,
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (request) => jobs.cancel(request.params.id, requireOrgRole(request, 'admin').orgId),
  );
}

/**
 * Every tenant's jobs and global ones, for operators holding `OPERATOR_TOKEN` (in the
 * `X-Operator-Token` header: `Authorization` carries users' access tokens). Without the setting
 * these routes answer 404.
 */
export function registerOperatorJobRoutes(app: HttpServer, jobs: Jobs, config: Config): void {
  const requireOperator = (request: FastifyRequest) => {
    const token = config.operatorToken;
    if (token === undefined) throw jobsModuleErrors.operatorApiDisabled();
    const header = request.headers[OPERATOR_TOKEN_HEADER];
    const given = typeof header === 'string' ? header : '';
    const expected = Buffer.from(token);
    const actual = Buffer.from(given);
    if (actual.length !== expected.length || !timingSafeEqual(actual, expected))
      throw jobsModuleErrors.notOperator();
  };
  app.get(
    '/operator/jobs',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Every job, any tenant (operator token)',
        querystring: ListQuery,
        response: { 200: Type.Object({ jobs: Type.Array(Job) }) },
      },
    },
    async (request) => {
      requireOperator(request);
      const { state, queue, limit = 50, after } = request.query;
      return { jobs: await jobs.list({ tenantId: null, state, queue, limit, after }) };
    },
  );
  app.get(
    '/operator/jobs/:id',
    {
      schema: {
        tags: ['jobs'],
        summary: 'One job (operator token)',
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (request) => {
      requireOperator(request);
      return jobs.get(request.params.id, null);
    },
  );
  app.post(
    '/operator/jobs/:id/retry',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Runs a dead or cancelled job again (operator token)',
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (request) => {
      requireOperator(request);
      return jobs.retry(request.params.id, null);
    },
  );
  app.post(
    '/operator/jobs/:id/cancel',
    {
      schema: {
        tags: ['jobs'],
        summary: 'Cancels a queued or running job (operator token)',
        params: IdParams,
        response: { 200: Job },
      },
    },
    async (request) => {
      requireOperator(request);
      return jobs.cancel(request.params.id, null);
    },
  );
}
