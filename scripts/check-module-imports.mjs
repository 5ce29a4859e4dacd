#!/usr/bin/env node
// Built-in modules are written exactly like apps: they import the kernel only through its public
// barrel (packages/socle/src/kernel/index.ts, re-exported by `socle`) and other modules only
// through their index.ts. Test files may reach internals. Exits 1 listing every violation.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const modulesDir = path.resolve(import.meta.dirname, '../packages/socle/src/modules');
const IMPORT = /(?:import|export)\s[^;]*?from\s+'([^']+)'|import\s*\(?\s*'([^']+)'/g;

function* sourceFiles(dir) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(full);
    else if (entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts')) yield full;
  }
}

const allowedOutside = (moduleName, resolved) => {
  const relative = path.relative(modulesDir, resolved);
  if (relative === path.join('..', 'kernel', 'index.js')) return true;
  const [owner, ...rest] = relative.split(path.sep);
  return !relative.startsWith('..') && owner !== moduleName && rest.join('/') === 'index.js';
};

const problems = [];
for (const file of sourceFiles(modulesDir)) {
  const relativeFile = path.relative(modulesDir, file);
  const moduleName = relativeFile.includes(path.sep) ? relativeFile.split(path.sep)[0] : undefined;
  for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
    const specifier = match[1] ?? match[2];
    if (!specifier.startsWith('.')) continue;
    const resolved = path.resolve(path.dirname(file), specifier);
    const insideOwnModule =
      moduleName !== undefined &&
      !path.relative(path.join(modulesDir, moduleName), resolved).startsWith('..');
    if (insideOwnModule || allowedOutside(moduleName, resolved)) continue;
    problems.push(`${path.relative(process.cwd(), file)}: imports '${specifier}'`);
  }
}
if (problems.length > 0) {
  process.stderr.write(
    `Modules import the kernel only from kernel/index.js and other modules only from their index.js:\n  ${problems.join('\n  ')}\n`,
  );
  process.exit(1);
}

// Example modules (examples/*) and apps (apps/*) are written as an app outside this repository
// would be: they import Socle only through its published entries (`socle`, `socle/testing`),
// never its files.
const exampleProblems = [];
for (const examplesDir of ['../examples', '../apps'].map((dir) => path.resolve(import.meta.dirname, dir))) {
  if (!existsSync(examplesDir)) continue;
  for (const example of readdirSync(examplesDir, { withFileTypes: true })) {
    if (!example.isDirectory()) continue;
    for (const folder of ['src', 'test']) {
      const dir = path.join(examplesDir, example.name, folder);
      try {
        readdirSync(dir);
      } catch {
        continue;
      }
      for (const file of (function* all(d) {
        for (const entry of readdirSync(d, { withFileTypes: true })) {
          const full = path.join(d, entry.name);
          if (entry.isDirectory()) yield* all(full);
          else if (entry.name.endsWith('.ts') || (entry.name.endsWith('.js') && !full.includes('/dist/')))
            yield full;
        }
      })(dir)) {
        for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
          const specifier = match[1] ?? match[2];
          const outside = path
            .relative(path.join(examplesDir, example.name), path.resolve(path.dirname(file), specifier))
            .startsWith('..');
          if ((specifier.startsWith('.') && outside) || /^socle\/(?!testing$)/.test(specifier))
            exampleProblems.push(`${path.relative(process.cwd(), file)}: imports '${specifier}'`);
        }
      }
    }
  }
}
if (exampleProblems.length > 0) {
  process.stderr.write(
    `Examples and apps import Socle only through 'socle' and 'socle/testing':\n  ${exampleProblems.join('\n  ')}\n`,
  );
  process.exit(1);
}
