import type { Scenario } from '../scenario.js';
import { dbSelect } from './db-select/scenario.js';

/** Every scenario, in the order `npm run bench` runs them. */
export const scenarios: readonly Scenario[] = [dbSelect];
