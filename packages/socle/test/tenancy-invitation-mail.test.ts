import { afterAll, beforeAll, expect, it } from 'vitest';
import { sql } from '../src/index.js';
import { createBuiltInModules } from '../src/modules/index.js';
import { createTestSocle, type TestSocle } from '../src/testing/index.js';
import { describeEachDatabase } from './support/each-database.js';

const PASSWORD = 'correct horse battery staple orbit';

describeEachDatabase('Invitations travel through the mail outbox', (target) => {
  let socle: TestSocle;
  beforeAll(async () => {
    socle = await createTestSocle(target, {
      modules: createBuiltInModules(),
    });
  });
  afterAll(() => socle?.dispose());

  const signUp = async (email: string): Promise<string> =>
    (await socle.newUser({ email, password: PASSWORD })).token;

  it('queues the invitation email with the invitation, and its token lets the invitee join', async () => {
    const tenant = await socle.newTenant({
      owner: await socle.newUser({ email: 'owner@cabinet.example', password: PASSWORD }),
      name: 'Cabinet Martin',
    });
    const owner = tenant.owner.token;
    const invitee = await signUp('broker@cabinet.example');
    const orgId = tenant.id;
    const invited = await socle.app.inject({
      method: 'POST',
      url: '/org/invitations',
      payload: { email: 'Broker@Cabinet.example', role: 'member' },
      headers: { authorization: `Bearer ${owner}`, 'x-org-id': orgId },
    });
    expect(invited.statusCode).toBe(201);

    const { rows } = await sql<{ recipient: string; subject: string; text_body: string }>`
      select recipient, subject, text_body from mail.outbox where recipient = 'broker@cabinet.example' and subject like 'You are invited%'`.execute(
      socle.db.kysely,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0]?.subject).toBe('You are invited to join Cabinet Martin');
    const token = /Your invitation token: (\S+)/.exec(rows[0]?.text_body ?? '')?.[1];
    expect(token).toMatch(/^inv_/);

    const accepted = await socle.app.inject({
      method: 'POST',
      url: '/invitations/accept',
      payload: { token },
      headers: { authorization: `Bearer ${invitee}` },
    });
    expect(accepted.json()).toEqual({ orgId, role: 'member' });
  });
});
