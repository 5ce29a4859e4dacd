import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { checksumOf, loadMigrations } from './migrations.js';

describe('loadMigrations', () => {
  it('reads .sql files from a directory in numeric order', () => {
    const directory = mkdtempSync(path.join(tmpdir(), 'socle-migrations-'));
    writeFileSync(path.join(directory, '10_later.sql'), 'select 10;');
    writeFileSync(path.join(directory, '2_second.sql'), 'select 2;');
    writeFileSync(path.join(directory, '0001_first.sql'), 'select 1;');
    writeFileSync(path.join(directory, 'README.md'), 'not a migration');
    const migrations = loadMigrations('quiz', 'quiz', directory);
    expect(migrations.map((migration) => migration.name)).toEqual([
      '0001_first.sql',
      '2_second.sql',
      '10_later.sql',
    ]);
    expect(migrations[0]).toMatchObject({
      module: 'quiz',
      schema: 'quiz',
      sql: 'select 1;',
      checksum: checksumOf('select 1;'),
    });
  });

  it('refuses a file without a number, naming it', () => {
    expect(() => loadMigrations('quiz', 'quiz', [{ name: 'create_rooms.sql', sql: '' }])).toThrowError(
      'Migration "create_rooms.sql" of module "quiz" must be named <number>_<words>.sql',
    );
  });

  it('refuses two files with the same number', () => {
    expect(() =>
      loadMigrations('quiz', 'quiz', [
        { name: '0001_a.sql', sql: '' },
        { name: '1_b.sql', sql: '' },
      ]),
    ).toThrowError(expect.objectContaining({ code: 'migration.duplicate_number' }));
  });

  it('names a directory that cannot be read', () => {
    expect(() => loadMigrations('quiz', 'quiz', '/nonexistent/migrations')).toThrowError(
      expect.objectContaining({ code: 'migration.unreadable' }),
    );
  });

  it('ignores line-ending differences in checksums', () => {
    expect(checksumOf('select 1;\r\nselect 2;\r\n')).toBe(checksumOf('select 1;\nselect 2;\n'));
  });
});
