import { Type } from '@fastify/type-provider-typebox';
import type { FastifyRequest } from 'fastify';
import { type HttpServer, routeSecurity } from '../../kernel/index.js';
import { requireOperator, requireUser } from '../identity/index.js';
import { OrgHeaders, requireOrg, requireOrgRole } from '../tenancy/index.js';
import { ledgerErrors } from './ledger.errors.js';
import {
  type Account,
  DEFAULT_PAGE_SIZE,
  type LedgerOperation,
  type LedgerService,
  MAX_BATCH_SIZE,
  type PersonalBook,
  type ReconciliationReport,
  type Transfer,
  type TransferPage,
} from './ledger.service.js';
import { formatMinorUnits } from './units.js';

const NullableString = Type.Union([Type.String(), Type.Null()]);
/** Minor units: a string of digits (any size up to 2^63-1) or a JSON integer up to 2^53-1. */
const AmountInput = Type.Union([
  Type.String({ pattern: '^[0-9]{1,19}$' }),
  Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }),
]);
const AmountOutput = Type.String({ pattern: '^-?[0-9]+$', description: 'Minor units, as a decimal string' });
const Metadata = Type.Record(Type.String(), Type.Unknown(), { description: 'JSON object set by the app' });
const Uuid = Type.String({ format: 'uuid' });

const BalanceSchema = Type.Object({
  debitsPending: AmountOutput,
  debitsPosted: AmountOutput,
  creditsPending: AmountOutput,
  creditsPosted: AmountOutput,
  posted: AmountOutput,
  available: AmountOutput,
});
const AccountSchema = Type.Object({
  id: Uuid,
  owner: Type.Object({ kind: Type.String(), userId: Type.Optional(Uuid) }),
  unit: Type.String(),
  scale: Type.Integer(),
  rule: NullableString,
  code: NullableString,
  metadata: Metadata,
  createdAt: Type.String({ format: 'date-time' }),
  balance: BalanceSchema,
});
const TransferSchema = Type.Object({
  id: Type.String(),
  kind: Type.String(),
  debitAccountId: Uuid,
  creditAccountId: Uuid,
  amount: AmountOutput,
  unit: Type.String(),
  holdId: NullableString,
  reversesId: NullableString,
  expiresAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  code: NullableString,
  metadata: Metadata,
  createdAt: Type.String({ format: 'date-time' }),
});
const TransferPageSchema = Type.Object({ transfers: Type.Array(TransferSchema), nextCursor: NullableString });
const OperationSchema = Type.Object(
  {
    kind: Type.Optional(
      Type.Union(['transfer', 'hold', 'post', 'void', 'reverse'].map((k) => Type.Literal(k))),
    ),
    id: Type.String({ minLength: 1, maxLength: 128, description: 'Client-supplied idempotency key' }),
    debitAccountId: Type.Optional(Uuid),
    creditAccountId: Type.Optional(Uuid),
    amount: Type.Optional(AmountInput),
    holdId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    transferId: Type.Optional(Type.String({ minLength: 1, maxLength: 128 })),
    timeoutSeconds: Type.Optional(Type.Integer({ minimum: 1, maximum: 366 * 86_400 })),
    code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
    metadata: Type.Optional(Metadata),
  },
  { additionalProperties: false },
);
const ListQuery = {
  code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
  since: Type.Optional(Type.String({ format: 'date-time', description: 'Inclusive' })),
  until: Type.Optional(Type.String({ format: 'date-time', description: 'Exclusive' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_PAGE_SIZE })),
  cursor: Type.Optional(Type.String({ maxLength: 200, description: 'nextCursor of the previous page' })),
};
const AccountParams = Type.Object({ accountId: Uuid });

const Decimal = Type.String({
  pattern: '^-?[0-9]+(\\.[0-9]+)?$',
  description: "In the unit's scale (`12.50` EUR), as a decimal string",
});
const PersonalBookSchema = Type.Object({
  accounts: Type.Array(
    Type.Object({
      id: Uuid,
      unit: Type.String(),
      scale: Type.Integer(),
      code: NullableString,
      balance: Type.Object({
        posted: Decimal,
        available: Decimal,
      }),
    }),
  ),
  transfers: Type.Array(
    Type.Object({
      id: Type.String(),
      kind: Type.String(),
      debitAccountId: Type.Union([Uuid, Type.Null()], { description: 'yours, or null: not shown' }),
      creditAccountId: Type.Union([Uuid, Type.Null()], { description: 'yours, or null: not shown' }),
      amount: Decimal,
      unit: Type.String(),
      code: NullableString,
      createdAt: Type.String({ format: 'date-time' }),
    }),
  ),
  nextCursor: NullableString,
});

/**
 * What a person sees of their own book: amounts in each unit's scale, and of a transfer only
 * their own side (the other account may be another person's).
 */
function serializePersonalBook(book: PersonalBook) {
  const scales = new Map(book.accounts.map((account) => [account.id, account.scale]));
  const own = (accountId: string) => (scales.has(accountId) ? accountId : null);
  return {
    accounts: book.accounts.map((account) => ({
      id: account.id,
      unit: account.unit,
      scale: account.scale,
      code: account.code,
      balance: {
        posted: formatMinorUnits(account.balance.posted, account.scale),
        available: formatMinorUnits(account.balance.available, account.scale),
      },
    })),
    transfers: book.transfers.map((transfer) => ({
      id: transfer.id,
      kind: transfer.kind,
      debitAccountId: own(transfer.debitAccountId),
      creditAccountId: own(transfer.creditAccountId),
      amount: formatMinorUnits(
        transfer.amount,
        scales.get(transfer.debitAccountId) ?? scales.get(transfer.creditAccountId) ?? 0,
      ),
      unit: transfer.unit,
      code: transfer.code,
      createdAt: transfer.createdAt.toISOString(),
    })),
    nextCursor: book.nextCursor,
  };
}

const amountText = (value: bigint) => value.toString();

function serializeAccount(account: Account) {
  const { balance } = account;
  return {
    ...account,
    createdAt: account.createdAt.toISOString(),
    balance: {
      debitsPending: amountText(balance.debitsPending),
      debitsPosted: amountText(balance.debitsPosted),
      creditsPending: amountText(balance.creditsPending),
      creditsPosted: amountText(balance.creditsPosted),
      posted: amountText(balance.posted),
      available: amountText(balance.available),
    },
  };
}

function serializeTransfer(transfer: Transfer) {
  const { sequence: _sequence, ...rest } = transfer;
  return {
    ...rest,
    amount: amountText(transfer.amount),
    expiresAt: transfer.expiresAt?.toISOString() ?? null,
    createdAt: transfer.createdAt.toISOString(),
  };
}

const serializePage = (page: TransferPage) => ({
  transfers: page.transfers.map(serializeTransfer),
  nextCursor: page.nextCursor,
});

const listQuery = (query: {
  code?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}) => ({
  code: query.code,
  since: query.since === undefined ? undefined : new Date(query.since),
  until: query.until === undefined ? undefined : new Date(query.until),
  limit: query.limit,
  cursor: query.cursor,
});

/**
 * The ledger over HTTP. Org admins (`/org/ledger/…`) open accounts, post transfers and read
 * everything; members read their own accounts (`/ledger/…`) and never post: value moves through
 * the app's code (a purchase webhook, a job), which calls the service API.
 */
export function registerLedgerRoutes(app: HttpServer, ledger: LedgerService): void {
  const admin = { tags: ['ledger'], security: routeSecurity.memberOrApiKey, headers: OrgHeaders };

  const Sums = Type.Object({
    debitsPending: AmountOutput,
    debitsPosted: AmountOutput,
    creditsPending: AmountOutput,
    creditsPosted: AmountOutput,
  });
  // Null: the platform's book, accounts outside organizations (migration 0007).
  const PlatformOrOrg = Type.Union([Uuid, Type.Null()]);
  const Reconciliation = Type.Object({
    checkedAt: Type.String({ format: 'date-time' }),
    trigger: Type.Union([Type.Literal('schedule'), Type.Literal('operator')], {
      description: 'the hourly job, or the operator on demand',
    }),
    ok: Type.Boolean({ description: 'nothing drifted' }),
    accounts: Type.Array(
      Type.Object({
        accountId: Uuid,
        orgId: PlatformOrOrg,
        unit: Type.String(),
        stored: Sums,
        computed: Sums,
      }),
    ),
    units: Type.Array(
      Type.Object({ orgId: PlatformOrOrg, unit: Type.String(), posted: AmountOutput, pending: AmountOutput }),
    ),
  });
  const serializeReconciliation = (report: ReconciliationReport) => ({
    ...report,
    checkedAt: report.checkedAt.toISOString(),
  });
  app.post(
    '/operator/ledger/reconciliation',
    {
      schema: {
        tags: ['ledger'],
        security: routeSecurity.operator,
        summary:
          "Reconcile now, every organization's ledger: accounts whose stored sums differ from their transfers', units that do not sum to zero (operator token); kept as the latest result",
        response: { 200: Reconciliation },
      },
    },
    async (request) => {
      requireOperator(request);
      return serializeReconciliation(await ledger.check('operator'));
    },
  );

  app.get(
    '/operator/ledger/reconciliation',
    {
      schema: {
        tags: ['ledger'],
        security: routeSecurity.operator,
        summary:
          "The latest reconciliation's result, the hourly job's or an operator's (operator token); `last` is null before the first",
        response: { 200: Type.Object({ last: Type.Union([Reconciliation, Type.Null()]) }) },
      },
    },
    async (request) => {
      requireOperator(request);
      const last = await ledger.lastReconciliation();
      return { last: last === undefined ? null : serializeReconciliation(last) };
    },
  );

  app.post(
    '/org/ledger/accounts',
    {
      schema: {
        ...admin,
        summary: 'Open an account (admin)',
        body: Type.Object(
          {
            id: Type.Optional(Uuid),
            owner: Type.Union([
              Type.Object({ kind: Type.Literal('user'), userId: Uuid }, { additionalProperties: false }),
              Type.Object(
                { kind: Type.Union([Type.Literal('tenant'), Type.Literal('system')]) },
                { additionalProperties: false },
              ),
            ]),
            unit: Type.String({
              minLength: 1,
              maxLength: 32,
              description: 'EUR, XOF… or credits, coins, sats',
            }),
            scale: Type.Optional(Type.Integer({ minimum: 0, maximum: 18 })),
            rule: Type.Optional(
              Type.Union([
                Type.Literal('debits_must_not_exceed_credits'),
                Type.Literal('credits_must_not_exceed_debits'),
                Type.Null(),
              ]),
            ),
            code: Type.Optional(Type.String({ minLength: 1, maxLength: 64 })),
            metadata: Type.Optional(Metadata),
          },
          { additionalProperties: false },
        ),
        response: { 201: AccountSchema },
      },
    },
    async (request, reply) => {
      requireOrgRole(request, 'admin');
      const account = await ledger.createAccount(request.body);
      return reply.code(201).send(serializeAccount(account));
    },
  );

  app.get(
    '/org/ledger/accounts',
    {
      schema: {
        ...admin,
        summary: "The organization's accounts, by id (admin)",
        querystring: Type.Object(
          {
            ownerUserId: Type.Optional(Uuid),
            after: Type.Optional(Uuid),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: DEFAULT_PAGE_SIZE })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ accounts: Type.Array(AccountSchema) }) },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return { accounts: (await ledger.accounts(request.query)).map(serializeAccount) };
    },
  );

  app.get(
    '/org/ledger/accounts/:accountId',
    {
      schema: {
        ...admin,
        summary: 'An account and its balance (admin)',
        params: AccountParams,
        response: { 200: AccountSchema },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return serializeAccount(await ledger.account(request.params.accountId));
    },
  );

  app.get(
    '/org/ledger/accounts/:accountId/transfers',
    {
      schema: {
        ...admin,
        summary: "An account's history, newest first (admin)",
        params: AccountParams,
        querystring: Type.Object(ListQuery, { additionalProperties: false }),
        response: { 200: TransferPageSchema },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return serializePage(await ledger.history(request.params.accountId, listQuery(request.query)));
    },
  );

  app.post(
    '/org/ledger/transfers',
    {
      schema: {
        ...admin,
        summary: 'Post transfers, holds, posts, voids and reversals atomically: all or none (admin)',
        body: Type.Object(
          { transfers: Type.Array(OperationSchema, { minItems: 1, maxItems: MAX_BATCH_SIZE }) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ transfers: Type.Array(TransferSchema) }) },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      const transfers = await ledger.transferFromRequest(request.body.transfers as LedgerOperation[]);
      return { transfers: transfers.map(serializeTransfer) };
    },
  );

  app.get(
    '/org/ledger/transfers',
    {
      schema: {
        ...admin,
        summary: "The organization's transfers, newest first (admin)",
        querystring: Type.Object(
          { ...ListQuery, accountId: Type.Optional(Uuid) },
          { additionalProperties: false },
        ),
        response: { 200: TransferPageSchema },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return serializePage(
        await ledger.transfers({ ...listQuery(request.query), accountId: request.query.accountId }),
      );
    },
  );

  app.get(
    '/org/ledger/transfers/:transferId',
    {
      schema: {
        ...admin,
        summary: 'A transfer by id (admin)',
        params: Type.Object({ transferId: Type.String({ minLength: 1, maxLength: 128 }) }),
        response: { 200: TransferSchema },
      },
    },
    async (request) => {
      requireOrgRole(request, 'admin');
      return serializeTransfer(await ledger.getTransfer(request.params.transferId));
    },
  );

  app.get(
    '/ledger/me',
    {
      schema: {
        tags: ['ledger'],
        security: routeSecurity.user,
        summary:
          "Your own accounts outside organizations (a game's coins…) with their balances, and the transfers touching them, newest first",
        querystring: Type.Object(
          {
            limit: ListQuery.limit,
            cursor: ListQuery.cursor,
          },
          { additionalProperties: false },
        ),
        response: { 200: PersonalBookSchema },
      },
    },
    async (request) => {
      const { userId } = requireUser(request);
      return serializePersonalBook(await ledger.personalBook(userId, request.query));
    },
  );

  // A member's own accounts, read-only.
  const member = { tags: ['ledger'], security: routeSecurity.memberOrApiKey, headers: OrgHeaders };
  const ownAccount = async (request: FastifyRequest, accountId: string) => {
    const { userId } = requireOrg(request);
    const account = await ledger.account(accountId);
    // Another member's account answers as if it did not exist.
    if (account.owner.kind !== 'user' || account.owner.userId !== userId || request.apiKey !== null)
      throw ledgerErrors.accountNotFound(accountId, 'params/accountId');
    return account;
  };

  app.get(
    '/ledger/accounts',
    {
      schema: {
        ...member,
        summary: 'Your accounts in the current organization',
        response: { 200: Type.Object({ accounts: Type.Array(AccountSchema) }) },
      },
    },
    async (request) => {
      const { userId } = requireOrg(request);
      if (request.apiKey !== null) return { accounts: [] };
      return { accounts: (await ledger.accounts({ ownerUserId: userId, limit: 200 })).map(serializeAccount) };
    },
  );

  app.get(
    '/ledger/accounts/:accountId',
    {
      schema: {
        ...member,
        summary: 'One of your accounts and its balance',
        params: AccountParams,
        response: { 200: AccountSchema },
      },
    },
    async (request) => serializeAccount(await ownAccount(request, request.params.accountId)),
  );

  app.get(
    '/ledger/accounts/:accountId/transfers',
    {
      schema: {
        ...member,
        summary: "One of your accounts' history, newest first",
        params: AccountParams,
        querystring: Type.Object(ListQuery, { additionalProperties: false }),
        response: { 200: TransferPageSchema },
      },
    },
    async (request) => {
      const account = await ownAccount(request, request.params.accountId);
      return serializePage(await ledger.history(account.id, listQuery(request.query)));
    },
  );
}
