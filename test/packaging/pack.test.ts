/**
 * What a fresh clone gives: `npm pack` builds `dist/` on its own (the `prepare` script, which `npm install`
 * and installs from git run too), the package it makes works in another project (main, types, the `ferry`
 * command), and the README's "In twenty lines" runs as the README says.
 *
 * The clone is a copy of this checkout's files (tracked, and new ones not ignored) with node_modules
 * linked; the other project gets the tarball unpacked where npm would put it and, beside it, links to
 * exactly the dependencies the package declares (so a missing one fails), since the tests run offline.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ROOT, tempDir } from '../cli/helpers.ts';

const temp = tempDir();
after(() => temp.remove());
const CLONE = join(temp.dir, 'ferry');
const PROJECT = join(temp.dir, 'project');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command line through sh in `cwd`, bounded by `ms`. */
function sh(line: string, cwd: string, ms = 180_000): Promise<Run> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
  const child = spawn('sh', ['-c', line], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (c: string) => {
    stdout += c;
  });
  child.stderr.setEncoding('utf8').on('data', (c: string) => {
    stderr += c;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), ms);
  return new Promise((resolve) =>
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    }),
  );
}

let tarball = '';

before(async () => {
  const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
  })
    .split('\0')
    // node_modules is linked below (a link to it, as here, is not matched by the .gitignore's node_modules/).
    .filter((f) => f !== '' && f !== 'node_modules' && existsSync(join(ROOT, f)));
  for (const file of files) {
    mkdirSync(dirname(join(CLONE, file)), { recursive: true });
    cpSync(join(ROOT, file), join(CLONE, file));
  }
  symlinkSync(join(ROOT, 'node_modules'), join(CLONE, 'node_modules'));
  assert.equal(existsSync(join(CLONE, 'dist')), false, 'a fresh clone has no dist/');

  const packed = await sh(`npm pack --json --pack-destination ${JSON.stringify(temp.dir)}`, CLONE);
  assert.equal(packed.code, 0, packed.stderr);
  const [report] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('['))) as { filename: string }[];
  tarball = join(temp.dir, report?.filename ?? '');
});

describe('npm pack on a fresh clone', () => {
  it('builds dist/ first and puts main, types and the command in the package', () => {
    const listed = execFileSync('tar', ['-tzf', tarball], { encoding: 'utf8' }).split('\n');
    for (const file of ['dist/index.js', 'dist/index.d.ts', 'dist/client/index.js', 'dist/client/index.d.ts']) {
      assert.ok(listed.includes(`package/${file}`), `${file} is in the package`);
    }
    assert.ok(listed.includes('package/dist/cli/main.js'));
    assert.ok(
      listed.some((f) => f.startsWith('package/dist/stores/sqlite/migrations/')),
      'the SQL migrations',
    );
  });

  describe('installed into another project', () => {
    before(() => {
      const installed = join(PROJECT, 'node_modules', 'ferry');
      mkdirSync(installed, { recursive: true });
      execFileSync('tar', ['-xzf', tarball, '-C', installed, '--strip-components=1']);
      const manifest = JSON.parse(readFileSync(join(installed, 'package.json'), 'utf8')) as {
        dependencies: Record<string, string>;
        bin: Record<string, string>;
      };
      for (const name of [...Object.keys(manifest.dependencies), '@types/node']) {
        mkdirSync(dirname(join(PROJECT, 'node_modules', name)), { recursive: true });
        symlinkSync(join(ROOT, 'node_modules', name), join(PROJECT, 'node_modules', name));
      }
      // What npm does with `bin`: a link in node_modules/.bin to an executable file.
      mkdirSync(join(PROJECT, 'node_modules', '.bin'));
      for (const [name, path] of Object.entries(manifest.bin)) {
        chmodSync(join(installed, path), 0o755);
        symlinkSync(join('..', 'ferry', path), join(PROJECT, 'node_modules', '.bin', name));
      }
      writeFileSync(join(PROJECT, 'package.json'), JSON.stringify({ name: 'project', private: true, type: 'module' }));
    });

    it('imports: main works with the declared dependencies, and so does ferry/client', async () => {
      writeFileSync(
        join(PROJECT, 'use.mjs'),
        `import { open } from 'ferry';
import { connect } from 'ferry/client';
const ferry = await open('memory:');
const sent = await ferry.send('q', { n: 1 });
const [d] = await ferry.receive('q');
await ferry.ack(d, 'ok');
console.log(JSON.stringify({ result: await sent.result(), connect: typeof connect }));
await ferry.close();
`,
      );
      const run = await sh('node use.mjs', PROJECT);
      assert.equal(run.code, 0, run.stderr);
      assert.deepEqual(JSON.parse(run.stdout), { result: 'ok', connect: 'function' });
    });

    it('type-checks: a TypeScript user gets the declarations', async () => {
      writeFileSync(
        join(PROJECT, 'typed.ts'),
        `import { type Ferry, open, UnrecoverableError } from 'ferry';
import { connect } from 'ferry/client';
const ferry: Ferry = await open('memory:');
const sent: { id: string } = await ferry.send('q', 1);
export const values = [sent.id, UnrecoverableError, connect];
// @ts-expect-error: the declarations are real, so a wrong call is refused.
await ferry.send(42);
`,
      );
      writeFileSync(
        join(PROJECT, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'ES2022',
            module: 'NodeNext',
            moduleResolution: 'NodeNext',
            strict: true,
            noEmit: true,
            types: ['node'],
          },
          files: ['typed.ts'],
        }),
      );
      const run = await sh(`${JSON.stringify(join(ROOT, 'node_modules', '.bin', 'tsc'))} -p .`, PROJECT);
      assert.equal(run.code, 0, run.stdout + run.stderr);
    });

    it('gives the ferry command', async () => {
      const run = await sh('node_modules/.bin/ferry --help', PROJECT);
      assert.equal(run.code, 0, run.stderr);
      assert.match(run.stdout, /Usage: ferry/);
      const stats = await sh('node_modules/.bin/ferry stats --store memory:', PROJECT);
      assert.equal(stats.code, 0, stats.stderr);
      assert.match(stats.stdout, /no queues yet/);
    });
  });
});

describe('README: In twenty lines', () => {
  it('runs on the fresh clone as the README says', async () => {
    const readme = readFileSync(join(CLONE, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('## In twenty lines'));
    const how = section.match(/save this as\s+`([^`]+\.ts)`\s+and run\s+`([^`]+)`/);
    assert.ok(how, 'the README says where to save the example and how to run it');
    const code = section.match(/```ts\n([\s\S]*?)```/)?.[1];
    assert.ok(code, 'the README has the example');
    writeFileSync(join(CLONE, how[1] as string), code);
    const run = await sh(how[2] as string, CLONE);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stdout, /\{ delivered: 'ada@example\.com' \}/);
    assert.ok(existsSync(join(CLONE, 'ferry-data', 'ferry.db')), 'the default store, in the checkout');
  });
});
