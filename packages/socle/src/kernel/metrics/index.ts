export {
  createMetrics,
  type GaugeOptions,
  type HistogramOptions,
  type MetricCounter,
  type MetricHistogram,
  type MetricLabels,
  type MetricOptions,
  type Metrics,
} from './metrics.js';
