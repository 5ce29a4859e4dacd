import type { CustomScenario, Scenario } from '../scenario.js';
import { cryptocare } from './cryptocare/scenario.js';
import { dbSelect, dbSelectBuilder } from './db-select/scenario.js';
import { filesDownload, filesUpload } from './files/scenario.js';
import { fleet } from './fleet/scenario.js';
import { jobs } from './jobs/scenario.js';
import { ledgerTransfers } from './ledger/scenario.js';
import { outbound } from './outbound/scenario.js';
import { payments } from './payments/scenario.js';
import { realtimeBurst } from './realtime-burst/scenario.js';
import { realtimeFanout } from './realtime-fanout/scenario.js';
import { signIn } from './sign-in/scenario.js';
import { strategybuzzer } from './strategybuzzer/scenario.js';
import { tenantSelect } from './tenant-select/scenario.js';
import { tenantWrite } from './tenant-write/scenario.js';
import { thumbnails } from './thumbnails/scenario.js';

/** Every scenario, in the order `npm run bench` runs them. */
export const scenarios: readonly (Scenario | CustomScenario)[] = [
  dbSelect,
  dbSelectBuilder,
  tenantSelect,
  tenantWrite,
  signIn,
  jobs,
  realtimeFanout,
  realtimeBurst,
  thumbnails,
  ledgerTransfers,
  filesDownload,
  filesUpload,
  outbound,
  payments,
  cryptocare,
  strategybuzzer,
  fleet,
];
