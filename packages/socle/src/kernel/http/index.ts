export { toFieldErrors, writeProblemOnSocket } from './error-handling.js';
export {
  type CreateHttpServerOptions,
  createHttpServer,
  type HttpServer,
  REQUEST_ID_HEADER,
} from './http-server.js';
export { routeSecurity, SECURITY_SCHEMES } from './openapi.js';
export { installReadYourWrites, LSN_COOKIE, LSN_HEADER } from './read-your-writes.js';
export {
  DEFAULT_CONTENT_SECURITY_POLICY,
  registerWebClient,
  type WebClient,
  webClientErrors,
  webClientPath,
} from './web-client.js';
