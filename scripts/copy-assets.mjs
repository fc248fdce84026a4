// Copies the files tsc does not emit (SQL migrations, dashboard assets) from src/ to dist/.
import { cpSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const walk = (dir) =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? walk(path) : [path];
  });

for (const file of walk('src')) {
  if (file.endsWith('.ts')) continue;
  cpSync(file, join('dist', relative('src', file)));
}
