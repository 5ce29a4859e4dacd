export {
  combinePrivacyHooks,
  mergeExports,
  type PrivacyHooks,
  type PrivacySubject,
  withOwnerTransaction,
} from './privacy-hooks.js';
