export { createLogger, createSilentLogger, type Logger } from './logger.js';
export { createOutageLog, describeError, type OutageLog } from './outage-log.js';
