export { createScopeAccess, type RequestScope, type ScopeAccess } from './request-scope.js';
