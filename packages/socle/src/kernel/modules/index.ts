export {
  type ChannelAuthorizer,
  defineModule,
  type ModuleContext,
  type ModuleDefinition,
  type ModulePrivacyHooks,
  moduleErrors,
  orderModules,
  type SetupContext,
} from './define-module.js';
