import { describe, expect, it } from 'vitest';
import { toProblem } from './problem.js';
import { SocleError } from './socle-error.js';

describe('SocleError', () => {
  it('renders as an RFC 9457 problem with details as extension members', () => {
    const error = new SocleError('ledger.insufficient_funds', 'Account a1 has 3 credits, 5 needed', {
      status: 409,
      details: { accountId: 'a1', available: 3 },
    });
    expect(toProblem(error, { instance: '/transfers', requestId: 'r1' })).toEqual({
      type: 'urn:socle:problem:ledger.insufficient_funds',
      title: 'Conflict',
      status: 409,
      code: 'ledger.insufficient_funds',
      detail: 'Account a1 has 3 credits, 5 needed',
      instance: '/transfers',
      requestId: 'r1',
      accountId: 'a1',
      available: 3,
    });
  });

  it('keeps the standard members when details use the same names', () => {
    const error = new SocleError('x.y', 'real detail', {
      status: 400,
      details: { status: 200, detail: 'fake' },
    });
    expect(toProblem(error)).toMatchObject({ status: 400, detail: 'real detail' });
  });

  it.each(['NotDotted', 'ledger', 'Ledger.Insufficient', 'ledger.'])('refuses the code %j', (code) => {
    expect(() => new SocleError(code, 'x')).toThrow(TypeError);
  });

  it('refuses a status that is not an error status', () => {
    expect(() => new SocleError('x.y', 'x', { status: 200 })).toThrow(TypeError);
  });
});
