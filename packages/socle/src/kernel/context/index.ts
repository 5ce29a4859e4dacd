export {
  createScopeAccess,
  type RequestScope,
  type ScopeAccess,
  scopeOfSettings,
  TENANT_ID_SETTING,
  tenantSettings,
  USER_ID_SETTING,
} from './request-scope.js';
