export { httpErrors } from './kernel-errors.js';
export { PROBLEM_CONTENT_TYPE, type Problem, problemType, toProblem } from './problem.js';
export { type FieldError, isSocleError, SocleError, type SocleErrorOptions } from './socle-error.js';
