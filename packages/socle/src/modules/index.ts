import type { ModuleDefinition } from '../kernel/modules/index.js';

/**
 * The capabilities Socle ships (identity, tenancy, audit, privacy, files, realtime, ledger,
 * payments, …), each a module written with the same API as an app. They arrive with their issues.
 */
export const builtInModules: readonly ModuleDefinition[] = [];
