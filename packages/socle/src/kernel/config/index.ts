export {
  CONFIG_FILE_NAME,
  type Config,
  describeSettings,
  type LoadConfigOptions,
  type LogLevel,
  loadConfig,
  type RealtimeChannelRule,
} from './config.js';
