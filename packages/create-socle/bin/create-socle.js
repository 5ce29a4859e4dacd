#!/usr/bin/env node
// `npm create socle@latest <directory>` (or `npx create-socle <directory>`): writes a new product
// that depends on the `socle` package, with one module of its own, its migration and its test.
// Plain JavaScript and no dependency, so it runs at once on any Node that runs npm.
import { cpSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';

const USAGE = `Usage: npm create socle@latest <directory>
       npx create-socle <directory>

Creates <directory> (it must not exist, or be empty) with a product on Socle: one module
(src/notes: routes, service, store, a migration), its test, and npm scripts:
  npm start   build, then run Socle with the module (embedded database in .socle/)
  npm test    the module's tests, on embedded PGlite (and Postgres when one answers)`;

/** The files written, with `{{name}}` and `{{socleVersion}}` filled in. */
const TEMPLATE = new URL('../template/', import.meta.url);
/** create-socle is released with socle, same version: a product starts on the matching release. */
const { version } = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
/** npm's rule for a package name (lowercase, URL-safe, at most 214 characters). */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9._-]{0,213}$/;
/** npm never publishes files named .gitignore or .npmrc: the template keeps them under these names. */
const RENAMED = { _gitignore: '.gitignore', _npmrc: '.npmrc' };

function fail(message) {
  process.stderr.write(`${message}\n\n${USAGE}\n`);
  process.exit(2);
}

let parsed;
try {
  parsed = parseArgs({ options: { help: { type: 'boolean', short: 'h' } }, allowPositionals: true });
} catch (error) {
  fail(error.message);
}
if (parsed.values.help) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
if (parsed.positionals.length !== 1) fail('Give one directory to create.');

const target = path.resolve(parsed.positionals[0]);
const name = path.basename(target);
if (!PACKAGE_NAME.test(name))
  fail(`"${name}" cannot be an npm package name: use lowercase letters, digits, "-", "_" or ".".`);
if (existsSync(target) && readdirSync(target).length > 0) fail(`${target} exists and is not empty.`);

cpSync(TEMPLATE, target, { recursive: true });
for (const [stored, real] of Object.entries(RENAMED))
  renameSync(path.join(target, stored), path.join(target, real));
for (const file of ['package.json', 'README.md']) {
  const location = path.join(target, file);
  writeFileSync(
    location,
    readFileSync(location, 'utf8').replaceAll('{{name}}', name).replaceAll('{{socleVersion}}', version),
  );
}

const relative = path.relative(process.cwd(), target) || '.';
process.stdout.write(`Created ${name} in ${target}.

Next:
  cd ${relative}
  npm install
  npm start     # http://127.0.0.1:8080/docs
  npm test
`);
