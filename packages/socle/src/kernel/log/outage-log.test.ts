import { describe, expect, it } from 'vitest';
import { describeError } from './outage-log.js';

describe('describeError', () => {
  it('names an Error by its name, message and code', () => {
    const error = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' });
    expect(describeError(error)).toEqual({
      name: 'Error',
      message: 'connect ECONNREFUSED 127.0.0.1:5432',
      code: 'ECONNREFUSED',
    });
  });

  // pg-boss emits plain objects that carry the driver error's fields: the outage log said
  // "Database unreachable ([object Object])".
  it('reads the message and code of a plain object instead of printing [object Object]', () => {
    expect(describeError({ message: 'Query read timeout', code: '57014', severity: 'ERROR' })).toEqual({
      name: 'Error',
      message: 'Query read timeout',
      code: '57014',
    });
  });

  it('shows an object without a message as JSON, and anything else as text', () => {
    expect(describeError({ reason: 'closed' }).message).toBe('{"reason":"closed"}');
    expect(describeError('socket hang up').message).toBe('socket hang up');
    expect(describeError(undefined).message).toBe('undefined');
  });
});
