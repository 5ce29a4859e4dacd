export {
  createScopeAccess,
  type RequestScope,
  type ScopeAccess,
  TENANT_ID_SETTING,
  tenantSettings,
  USER_ID_SETTING,
} from './request-scope.js';
