import {
  defineJob,
  defineModule,
  defineSettings,
  type ModuleDefinition,
  type SettingValues,
  type SetupContext,
  setting,
} from '../../kernel/index.js';
import type { Realtime } from '../realtime/index.js';
import type { TenancyServices } from '../tenancy/index.js';
import { createLedgerPrivacy } from './ledger.privacy.js';
import { registerLedgerRoutes } from './ledger.routes.js';
import { createLedgerService, type LedgerService, type ReconciliationReport } from './ledger.service.js';
import type { LedgerTables } from './ledger.tables.js';

/** What the ledger module gives other modules, apps and tests (`socle.servicesOf(ledger)`). */
export interface LedgerServices {
  readonly ledger: LedgerService;
}

/** The ledger module's settings (`socle help config` lists them). */
export const ledgerSettings = defineSettings({
  holdTimeoutSeconds: setting.integer({
    env: 'LEDGER_HOLD_TIMEOUT_SECONDS',
    description:
      'Lifetime of a ledger hold whose operation gives no timeoutSeconds; past it the hold is voided',
    default: 3600,
    min: 1,
    max: 366 * 86_400,
  }),
});

export type LedgerSettings = SettingValues<typeof ledgerSettings>;

/** The ledger module's definition; its public API is {@link LedgerServices}. */
export type LedgerModule = ModuleDefinition<LedgerTables, LedgerServices, LedgerSettings>;

/** Every minute: holds past their expiry are voided (a job's schedule is part of its declaration). */
const HOLD_EXPIRY_CRON = '* * * * *';
/** Every hour: reconciliation recomputes every balance and reports drift. */
const RECONCILIATION_CRON = '17 * * * *';

/**
 * The ledger: accounts per organization in one unit each (a currency with its ISO 4217 exponent,
 * or an app unit such as credits), immutable double-entry transfers, atomic batches, client ids
 * that make every transfer idempotent, balance rules, holds (two-phase transfers) that expire,
 * reversals, history, reconciliation. TigerBeetle's semantics on Postgres and PGlite; see
 * docs/ledger.md.
 *
 * Opt-in (not in `createBuiltInModules()`): an app that moves no value carries no ledger tables,
 * routes or cron jobs.
 *
 * @example
 * const socle = await createSocle({ config, modules: [...createBuiltInModules(), createLedgerModule()] });
 * const { ledger } = socle.servicesOf(ledgerModule);
 */
export function createLedgerModule(): LedgerModule {
  return defineModule({
    name: 'ledger',
    dependsOn: ['identity', 'tenancy'],
    migrations: new URL('./migrations/', import.meta.url),
    globalTables: {
      reconciliations:
        "reconciliation checks every organization's ledger at once; its results are the operator's (owner connections only)",
    },
    settings: ledgerSettings,
    setup(context: SetupContext<LedgerTables, LedgerSettings>): LedgerServices {
      const { memberRole } = context.servicesOf<TenancyServices>('tenancy');
      // Realtime is optional: without it (or before it is set up) balances are not pushed. It is
      // looked up when the first push is due, once every module is set up, so the ledger need not
      // depend on it (nor be set up after it).
      const realtimeRegistered = context.modules.some((module) => module.name === 'realtime');
      // The last reconciliation this node ran or read (the hourly job runs on one node; the
      // console's Ledger page reads the stored latest).
      let last: ReconciliationReport | undefined;
      context.metrics.gauge({
        name: 'socle_ledger_reconciliation_drifted',
        help: 'Accounts and units out of balance at the last reconciliation this node ran or read (0: balanced)',
        collect: (set) => {
          if (last !== undefined) set({}, last.accounts.length + last.units.length);
        },
      });
      context.metrics.gauge({
        name: 'socle_ledger_reconciliation_timestamp_seconds',
        help: 'When the last reconciliation this node ran or read was run (Unix time)',
        collect: (set) => {
          if (last !== undefined) set({}, last.checkedAt.getTime() / 1000);
        },
      });
      return {
        ledger: createLedgerService({
          isMember: async (executor, userId) => (await memberRole(executor, userId)) !== null,
          scopeSettings: () => context.scope.transactionSettings(),
          publish: realtimeRegistered
            ? (message) => context.servicesOf<Realtime>('realtime').publish(message)
            : undefined,
          defaultHoldTimeoutSeconds: context.settings.holdTimeoutSeconds,
          db: context.db,
          clock: context.clock,
          log: context.log,
          transfersPosted: context.metrics.counter({
            name: 'socle_ledger_transfers_total',
            help: 'Ledger transfers written (replays not counted)',
          }),
          driftFound: context.metrics.counter({
            name: 'socle_ledger_drift_total',
            help: 'Accounts and units that reconciliation found out of balance',
          }),
          reconciled: (report) => {
            if (last === undefined || report.checkedAt >= last.checkedAt) last = report;
          },
        }),
      };
    },
    routes(app, { services }) {
      registerLedgerRoutes(app, services.ledger);
    },
    jobs: {
      expireHolds: defineJob<Record<string, never>, LedgerServices>({
        cron: HOLD_EXPIRY_CRON,
        maxAttempts: 1,
        async handler(_job, { ledger }) {
          await ledger.expireHolds();
        },
      }),
      reconcile: defineJob<Record<string, never>, LedgerServices>({
        cron: RECONCILIATION_CRON,
        maxAttempts: 1,
        async handler(_job, { ledger }) {
          await ledger.check();
        },
      }),
    },
    privacy: ({ db }) => createLedgerPrivacy(db),
  });
}
