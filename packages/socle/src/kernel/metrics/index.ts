export { createMetrics, type MetricCounter, type MetricOptions, type Metrics } from './metrics.js';
