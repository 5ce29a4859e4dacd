import { SocleError } from '../../kernel/index.js';

export const jobsModuleErrors = {
  operatorApiDisabled: () =>
    new SocleError('jobs.operator_api_disabled', 'The operator API is off: set OPERATOR_TOKEN to enable it', {
      status: 404,
    }),
  notOperator: () =>
    new SocleError(
      'jobs.not_operator',
      'This route needs the operator token in the X-Operator-Token header',
      {
        status: 401,
      },
    ),
};
