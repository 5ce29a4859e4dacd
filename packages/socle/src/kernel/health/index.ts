export { type CheckResult, type HealthOptions, registerHealthRoutes } from './health.js';
