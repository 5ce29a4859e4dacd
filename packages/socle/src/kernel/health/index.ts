export { type CheckResult, type HealthOptions, registerHealthRoutes } from './health.js';
export {
  createNodeReports,
  NODE_REPORTS_CHANNEL,
  type NodeHealth,
  type NodeReport,
  type NodeReports,
  type NodeReportsOptions,
} from './node-reports.js';
