import { createLedgerModule } from 'socle';
import { createStrategyBuzzerModule } from './buzzer.module.js';

/**
 * What `socle start` loads for the game (`SOCLE_MODULES=./apps/strategybuzzer/dist/server.js`):
 * the opt-in ledger it keeps coins in, and the app itself, beside Socle's built-in modules.
 */
export default [createLedgerModule(), createStrategyBuzzerModule()];
