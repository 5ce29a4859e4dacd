export { toFieldErrors, writeProblemOnSocket } from './error-handling.js';
export {
  type CreateHttpServerOptions,
  createHttpServer,
  type HttpServer,
  REQUEST_ID_HEADER,
} from './http-server.js';
export { routeSecurity, SECURITY_SCHEMES } from './openapi.js';
export {
  DEFAULT_CONTENT_SECURITY_POLICY,
  registerWebClient,
  type WebClient,
  webClientErrors,
  webClientPath,
} from './web-client.js';
