// Finishes `tsc -b` for every workspace: copies the non-TypeScript files modules load at run
// time (SQL migrations) from src/ to dist/, removing those whose source was renamed or deleted
// (a stale copy of a renumbered migration made the server refuse to start), and marks `bin`
// entries executable (tsc emits 0644, so `npx socle` would be refused).
import { chmodSync, cpSync, existsSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';

const ASSET = /\.sql$/;
const roots = ['packages', 'apps', 'examples'].flatMap((group) =>
  existsSync(group) ? readdirSync(group).map((name) => path.join(group, name)) : [],
);
roots.push('bench');

/** Deletes the assets under `dist` that have no source under `source` any more. */
function removeStaleAssets(dist, source) {
  if (!existsSync(dist)) return;
  for (const entry of readdirSync(dist, { withFileTypes: true })) {
    const file = path.join(dist, entry.name);
    if (entry.isDirectory()) removeStaleAssets(file, path.join(source, entry.name));
    else if (ASSET.test(entry.name) && !existsSync(path.join(source, entry.name))) rmSync(file);
  }
}

for (const root of roots) {
  const source = path.join(root, 'src');
  if (existsSync(source) && statSync(source).isDirectory()) {
    removeStaleAssets(path.join(root, 'dist'), source);
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
