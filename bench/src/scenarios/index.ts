import type { Scenario } from '../scenario.js';
import { dbSelect, dbSelectBuilder } from './db-select/scenario.js';

/** Every scenario, in the order `npm run bench` runs them. */
export const scenarios: readonly Scenario[] = [dbSelect, dbSelectBuilder];
