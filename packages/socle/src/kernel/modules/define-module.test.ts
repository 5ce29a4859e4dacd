import { describe, expect, it } from 'vitest';
import { defineModule, orderModules } from './define-module.js';

const module = (name: string, dependsOn: string[] = []) => defineModule({ name, dependsOn });

describe('defineModule', () => {
  it.each(['Quiz', '1quiz', 'quiz-rooms', 'socle', 'public', 'pg_catalog', ''])(
    'refuses the name %j',
    (name) => {
      expect(() => module(name)).toThrowError(expect.objectContaining({ code: 'module.invalid_name' }));
    },
  );

  it('freezes the definition', () => {
    const quiz = module('quiz', ['realtime']);
    expect(Object.isFrozen(quiz)).toBe(true);
    expect(Object.isFrozen(quiz.dependsOn)).toBe(true);
  });
});

describe('orderModules', () => {
  it('puts dependencies first and keeps registration order otherwise', () => {
    const ordered = orderModules([
      module('quiz', ['realtime', 'identity']),
      module('identity'),
      module('realtime', ['identity']),
      module('files'),
    ]);
    expect(ordered.map((item) => item.name)).toEqual(['identity', 'realtime', 'quiz', 'files']);
  });

  it('names a missing dependency', () => {
    expect(() => orderModules([module('quiz', ['realtime'])])).toThrowError(
      'Module "quiz" depends on "realtime", which is not registered',
    );
  });

  it('names the modules of a cycle', () => {
    expect(() => orderModules([module('a', ['b']), module('b', ['c']), module('c', ['a'])])).toThrowError(
      'Modules depend on each other in a cycle: a → b → c → a',
    );
  });

  it('refuses a module registered twice', () => {
    expect(() => orderModules([module('a'), module('a')])).toThrowError(
      expect.objectContaining({ code: 'module.duplicate' }),
    );
  });
});
