import type { WorkScenario } from '../jobs-harness.js';
import type { Scenario } from '../scenario.js';
import { dbSelect, dbSelectBuilder } from './db-select/scenario.js';
import { jobs } from './jobs/scenario.js';
import { signIn } from './sign-in/scenario.js';
import { tenantSelect } from './tenant-select/scenario.js';

/** Every scenario, in the order `npm run bench` runs them. */
export const scenarios: readonly Scenario[] = [dbSelect, dbSelectBuilder, tenantSelect, signIn];

/** Scenarios without HTTP load, run after the others (see jobs-harness.ts). */
export const workScenarios: readonly WorkScenario[] = [jobs];
