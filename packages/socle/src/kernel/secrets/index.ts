export {
  createSecretBox,
  decodeSecretKey,
  openSecretBox,
  SECRET_KEY_FILE,
  type SecretBox,
  type SecretKeySource,
  secretErrors,
} from './secret-box.js';
