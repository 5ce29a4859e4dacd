/** Child process: Socle building the Kysely query on every request. Started by the harness. */
import { serveSocle } from './serve-socle.js';

serveSocle('builder');
