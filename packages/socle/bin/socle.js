#!/usr/bin/env node
// The `socle` command. This file is committed, not built: npm links a package's bins when it
// installs it, and in a fresh clone of the repository `dist/` does not exist yet, so a bin pointing
// into `dist/` would never be linked (`npx socle` → "socle: not found").
import { existsSync } from 'node:fs';

const entry = new URL('../dist/cli/main.js', import.meta.url);
if (existsSync(entry)) {
  await import(entry.href);
} else {
  process.stderr.write(
    'socle: the CLI is not built yet (no dist/cli/main.js). Run "npm run build" (or "npm start", which builds) in the Socle repository, then try again.\n',
  );
  process.exitCode = 1;
}
