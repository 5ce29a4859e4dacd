/** Child process: Socle with the prepared (hot-path) query. Started by the harness. */
import { serveSocle } from './serve-socle.js';

serveSocle('prepared');
