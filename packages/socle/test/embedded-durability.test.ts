import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSocle, loadConfig, sql } from '../src/index.js';
import { createSilentLogger } from '../src/kernel/log/index.js';
import { createTestPgliteDatabase, type TestDatabase } from '../src/testing/index.js';
import notes from './fixtures/durable-notes-module.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const cli = path.join(here, '../src/cli/main.ts');

/** Starts `socle start` embedded and resolves with its URL once the banner is logged. */
function startServer(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', cli, 'start'], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      LOG_FORMAT: 'json',
      SOCLE_MODULES: path.join(here, 'fixtures/durable-notes-module.ts'),
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      for (const line of output.split('\n')) {
        if (line.includes('"url"')) {
          resolve({ child, url: (JSON.parse(line) as { url: string }).url });
          return;
        }
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => {
      output += chunk.toString();
    });
    child.on('exit', (code) => reject(new Error(`socle start exited with ${code}: ${output}`)));
  });
}

describe('Embedded mode survives a killed process', () => {
  let database: TestDatabase;
  beforeAll(async () => {
    database = await createTestPgliteDatabase();
  });
  afterAll(() => database.drop());

  it('keeps every committed row after kill -9 and takes over the stale lock', async () => {
    const dataDir = database.dataDir as string;
    const { child, url } = await startServer(dataDir);
    try {
      for (let id = 1; id <= 40; id++) {
        const response = await fetch(`${url}/notes`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ id, body: `note ${id}` }),
        });
        expect(response.status).toBe(201);
      }
      expect(readFileSync(path.join(dataDir, 'socle.pid'), 'utf8')).toBe(String(child.pid));
    } finally {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
    }

    const socle = await createSocle({
      config: loadConfig({ env: {}, configFile: false, overrides: { dataDir, port: 0, logLevel: 'silent' } }),
      modules: [notes],
      log: createSilentLogger(),
    });
    try {
      const { rows } = await sql<{ n: number; last: string }>`
        select count(*)::int as n, max(body) filter (where id = 40) as last from notes.notes`.execute(
        socle.db.kysely,
      );
      expect(rows[0]).toEqual({ n: 40, last: 'note 40' });
    } finally {
      await socle.close();
    }
  });
});
