/** The privacy module: GDPR export and erasure across every module's privacy hooks. */
export { createPrivacyModule } from './privacy.module.js';
export {
  createPrivacyService,
  type ErasureResult,
  type PrivacyService,
  type SubjectExport,
} from './privacy.service.js';
