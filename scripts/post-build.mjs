// Finishes `tsc -b` for every workspace: copies the non-TypeScript files modules load at run
// time (SQL migrations) from src/ to dist/, and marks `bin` entries executable (tsc emits 0644,
// so `npx socle` would be refused).
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const ASSET = /\.sql$/;
const roots = ['packages', 'apps', 'examples'].flatMap((group) =>
  existsSync(group) ? readdirSync(group).map((name) => path.join(group, name)) : [],
);
roots.push('bench');

for (const root of roots) {
  const source = path.join(root, 'src');
  if (existsSync(source) && statSync(source).isDirectory()) {
    cpSync(source, path.join(root, 'dist'), {
      recursive: true,
      filter: (file) => statSync(file).isDirectory() || ASSET.test(file),
    });
  }
  const manifest = path.join(root, 'package.json');
  if (!existsSync(manifest)) continue;
  const { bin } = JSON.parse(readFileSync(manifest, 'utf8'));
  const targets = typeof bin === 'string' ? [bin] : Object.values(bin ?? {});
  for (const target of targets) {
    const file = path.join(root, target);
    if (existsSync(file)) chmodSync(file, 0o755);
  }
}
