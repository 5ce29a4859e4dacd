// Builds the operator console (packages/socle/console) into packages/socle/dist/console-web, which the
// console module serves at /console/. Run by the root `npm run build` after `tsc -b`; the output
// is under dist/ (gitignored), so a fresh clone builds it and nothing built is committed.
import { copyFileSync, mkdirSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const here = (file) => fileURLToPath(new URL(file, import.meta.url));
const out = here('../dist/console-web/');
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [here('./src/main.tsx')],
  bundle: true,
  minify: true,
  format: 'esm',
  target: 'es2022',
  jsx: 'automatic',
  jsxImportSource: 'preact',
  outfile: `${out}app.js`,
  logLevel: 'warning',
});
for (const file of ['index.html', 'styles.css']) copyFileSync(here(`./${file}`), `${out}${file}`);
if (process.argv.includes('--size')) console.log(`console app.js: ${statSync(`${out}app.js`).size} bytes`);
