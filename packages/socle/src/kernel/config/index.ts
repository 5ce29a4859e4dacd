export {
  CONFIG_FILE_NAME,
  type Config,
  type ConfigurationEntry,
  describeConfiguration,
  describeSettings,
  type LoadConfigOptions,
  type LogLevel,
  loadConfig,
  readModuleSpecifiers,
  resolveModuleSettings,
  type SettingDescription,
  type Shard,
} from './config.js';
export type { RawValue, SettingParser } from './parsers.js';
export {
  defineSettings,
  type SettingDefinition,
  type SettingsOwner,
  type SettingsSpec,
  type SettingValues,
  setting,
} from './settings.js';
