export {
  type ChannelAuthorizer,
  defineModule,
  type ModuleContext,
  type ModuleDefinition,
  moduleErrors,
  orderModules,
} from './define-module.js';
