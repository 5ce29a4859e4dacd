// Copies the non-TypeScript files that modules load at run time (SQL migrations) from each
// workspace's src/ to its dist/, since tsc only emits JavaScript.
import { cpSync, existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';

const ASSET = /\.sql$/;
const roots = ['packages', 'apps'].flatMap((group) =>
  existsSync(group) ? readdirSync(group).map((name) => path.join(group, name)) : [],
);
roots.push('bench');

for (const root of roots) {
  const source = path.join(root, 'src');
  if (!existsSync(source) || !statSync(source).isDirectory()) continue;
  cpSync(source, path.join(root, 'dist'), {
    recursive: true,
    filter: (file) => statSync(file).isDirectory() || ASSET.test(file),
  });
}
