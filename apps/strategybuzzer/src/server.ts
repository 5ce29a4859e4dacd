import { createFilesModule, createLedgerModule, createPaymentsModule } from 'socle';
import { createStrategyBuzzerModule } from './buzzer.module.js';
import { coinPacks } from './shop.js';

/**
 * What `socle start` loads for the game (`SOCLE_MODULES=./apps/strategybuzzer/dist/server.js`):
 * the opt-in ledger it keeps coins in, files for avatars, payments selling its coin packs (Stripe Checkout on the
 * web; add 'apple' and 'google-play' for the Flutter app's in-app purchases, configured by their
 * PAYMENTS_* settings), and the app itself, beside Socle's built-in modules.
 */
export default [
  createLedgerModule(),
  // Files for the players' avatars (the game declares its bucket, sb-avatars, itself).
  createFilesModule(),
  createPaymentsModule({ providers: ['stripe'], catalog: coinPacks }),
  createStrategyBuzzerModule(),
];
