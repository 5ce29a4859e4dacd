import { afterAll, beforeAll, expect, it } from 'vitest';
import { defineJob, defineModule, type SetupContext, Type } from '../src/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

interface CounterServices {
  readonly count: () => number;
  add(amount: number): void;
}

/** A module whose services hold state: one instance shared by its routes, job, hooks and dependents. */
function createFixture() {
  const setups: string[] = [];
  const counter = defineModule({
    name: 'contract_counter',
    setup(): CounterServices {
      setups.push('contract_counter');
      let total = 0;
      return { count: () => total, add: (amount) => (total += amount) };
    },
    routes(app, { services }) {
      app.post('/contract/add', { schema: { body: Type.Object({ amount: Type.Integer() }) } }, (request) => {
        services.add(request.body.amount);
        return { total: services.count() };
      });
    },
    jobs: {
      add: defineJob({
        schema: Type.Object({ amount: Type.Integer() }),
        async handler({ payload }, services: CounterServices) {
          services.add(payload.amount);
        },
      }),
    },
    privacy: ({ services }) => ({
      exportSubject: async () => ({ total: services.count() }),
      eraseSubject: async () => undefined,
    }),
  });
  const reader = defineModule({
    name: 'contract_reader',
    dependsOn: ['contract_counter'],
    setup(context: SetupContext) {
      setups.push('contract_reader');
      const counted = context.servicesOf<CounterServices>('contract_counter');
      return { doubled: () => counted.count() * 2 };
    },
    routes(app, { services }) {
      app.get('/contract/doubled', () => ({ doubled: services.doubled() }));
    },
  });
  return { counter, reader, setups };
}

describeEachDatabase('Module contract: setup builds services once and hands them to every hook', (target) => {
  let socle: TestSocle;
  const fixture = createFixture();

  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: [fixture.reader, fixture.counter],
      config: { jobsQueues: [] },
    });
  });
  afterAll(async () => {
    await socle?.close();
  });

  it('sets each module up once, dependencies first, and shares the one instance', async () => {
    expect(fixture.setups).toEqual(['contract_counter', 'contract_reader']);
    const added = await socle.app.inject({ method: 'POST', url: '/contract/add', payload: { amount: 3 } });
    expect(added.json()).toEqual({ total: 3 });
    await socle.jobs.enqueue(socle.db.kysely, 'contract_counter.add', { amount: 4 });
    expect(await socle.jobs.runDueJobs()).toEqual({ completed: 1, failed: 0 });
    expect(socle.servicesOf(fixture.counter).count()).toBe(7);
    const doubled = await socle.app.inject({ method: 'GET', url: '/contract/doubled' });
    expect(doubled.json()).toEqual({ doubled: 14 });
    const hooks = socle.context.privacyHooks().find((entry) => entry.module === 'contract_counter');
    expect(await hooks?.hooks.exportSubject({ userId: 'u', email: 'e@example.com' })).toEqual({ total: 7 });
    expect(fixture.setups).toHaveLength(2);
  });

  it('refuses the services of a module that is not set up, naming it', () => {
    expect(() => socle.servicesOf('not_registered')).toThrow(
      expect.objectContaining({ code: 'module.not_set_up' }),
    );
  });
});

describeEachDatabase('Module contract: a module uses only what it depends on', (target) => {
  it('fails at start when setup asks for a module set up after it', async () => {
    const early = defineModule({
      name: 'contract_early',
      setup: (context: SetupContext) => context.servicesOf('contract_late'),
    });
    const late = defineModule({ name: 'contract_late', setup: () => ({}) });
    await expect(createTestSocle(target, { modules: [early, late] })).rejects.toMatchObject({
      code: 'module.not_set_up',
      details: { module: 'contract_late' },
    });
  });
});
