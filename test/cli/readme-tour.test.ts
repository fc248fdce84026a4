/**
 * The README's tour of the command line, run as written: each line of its block goes through `sh` in a
 * checkout (here a temp directory linking this one's package.json, sources and node_modules, so that
 * `./ferry-data`, `jobs.ndjson` and `./resize.sh` are the user's own), with the default store.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Ferry } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { ROOT, tempDir } from './helpers.ts';

/** The lines of the README's command-line block, without their comments. */
function tourLines(): string[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('**The command line**'));
  const block = section.match(/```sh\n([\s\S]*?)```/)?.[1];
  assert.ok(block, 'the README has a command-line tour block');
  return block
    .split('\n')
    .map((line) => line.replace(/\s+#\s.*$/, '').trim())
    .filter((line) => line !== '');
}

const temp = tempDir();
after(() => temp.remove());
const STORE = `sqlite:${join(temp.dir, 'ferry-data', 'ferry.db')}`;

class Line {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(line: string) {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
    // Its own process group, so that a run past its bound can be killed with all it started.
    this.child = spawn('sh', ['-c', `exec ${line}`], {
      cwd: temp.dir,
      env: { ...env, NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      this.stdout += c;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
    });
    this.exited = new Promise((resolve) => this.child.once('close', resolve));
  }

  /**
   * Stops a command that follows until stopped, with SIGTERM to npm alone, as `kill` or a service manager
   * would. (Ctrl-C would signal the whole group, and npm then reports 130 whatever its script did.)
   */
  stop(): void {
    this.child.kill('SIGTERM');
  }

  async until(pattern: RegExp, ms = 60_000, meanwhile?: () => Promise<unknown>): Promise<void> {
    const deadline = Date.now() + ms;
    while (!pattern.test(this.stdout)) {
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no ${pattern} (exit ${this.child.exitCode})\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await meanwhile?.();
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  /** The exit code; kills the group past `ms`, a bound on every run. */
  async end(ms = 60_000): Promise<number | null> {
    const timer = setTimeout(() => {
      try {
        process.kill(-(this.child.pid as number), 'SIGKILL');
      } catch {}
    }, ms);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** How each command of the tour is checked; a new line in the tour needs a check here. */
const checks: Record<string, (line: Line, ferry: () => Promise<Ferry>) => Promise<void>> = {
  async send(line) {
    assert.equal(await line.end(), 0, line.stderr);
    assert.match(line.stdout, /^[0-9a-f-]{36}$|^sent 3 messages to demo/m);
  },
  async stats(line) {
    assert.equal(await line.end(), 0, line.stderr);
    assert.match(line.stdout, /^demo\s+4\s/m, 'the four messages the tour sent');
  },
  async ls(line) {
    assert.equal(await line.end(), 0, line.stderr);
    assert.match(line.stdout, /no messages/);
  },
  async events(line, ferry) {
    // It follows from now: send until it has shown one, as a user would in another terminal.
    const f = await ferry();
    await line.until(/\bsent\s+demo\s+[0-9a-f-]{36}/, 60_000, () => f.send('demo', { late: true }));
    line.stop();
    assert.equal(await line.end(), 0, line.stderr);
  },
  async work(line, ferry) {
    const f = await ferry();
    const sent = await f.send('thumbnails', { image: 'cat.jpg' });
    await line.until(new RegExp(`✓ ${sent.id}`));
    line.stop();
    assert.equal(await line.end(), 0, line.stderr);
    const info = await f.get(sent.id);
    assert.deepEqual([info?.state, info?.result], ['completed', { thumbnail: 'cat.jpg.small' }]);
  },
  async topics(line, ferry) {
    assert.equal(await line.end(), 0, line.stderr);
    assert.match(line.stdout, /billing is subscribed to orders/);
    assert.deepEqual(await (await ferry()).subscriptions('orders'), ['billing']);
  },
  async schedules(line, ferry) {
    assert.equal(await line.end(), 0, line.stderr);
    assert.match(line.stdout, /nightly: 0 3 \* \* \* \(UTC\) into reports, next at /);
    const [nightly] = await (await ferry()).schedules();
    assert.deepEqual([nightly?.name, nightly?.queue], ['nightly', 'reports']);
  },
  async configure(line, ferry) {
    assert.equal(await line.end(), 0, line.stderr);
    assert.match(line.stdout, /keyConcurrency\s+2/);
    assert.match(line.stdout, /timeout\s+300000 ms/);
    const settings = await (await ferry()).configure('demo');
    assert.deepEqual([settings.keyConcurrency, settings.keyRateLimit], [2, { max: 3, per: 1000 }]);
    assert.deepEqual([settings.timeout, settings.deadLetter], [300_000, 'demo.dead']);
  },
  async flow(line, ferry) {
    assert.equal(await line.end(), 0, line.stderr);
    // npm's own lines (`> ferry@… ferry`) come first: the tree is the lines that start with an id.
    const tree = line.stdout.split('\n').filter((l) => /^\s*[0-9a-f-]{36} {2}/.test(l));
    const [root, ...children] = tree;
    assert.match(root as string, /^[0-9a-f-]{36} {2}report$/);
    assert.equal(children.length, 2);
    const id = (root as string).split(' ')[0] as string;
    assert.equal((await (await ferry()).get(id))?.state, 'pending');
    assert.equal((await (await ferry()).children(id)).length, 2);
  },
  async '--help'(line) {
    assert.equal(await line.end(), 0, line.stderr);
    assert.match(line.stdout, /Usage: ferry/);
  },
};

describe('README: the command-line tour', () => {
  let ferry: Ferry | undefined;
  const opened = async () => {
    ferry ??= await open(STORE);
    return ferry;
  };

  before(() => {
    for (const name of ['package.json', 'tsconfig.json', 'src', 'node_modules']) {
      symlinkSync(join(ROOT, name), join(temp.dir, name));
    }
    writeFileSync(join(temp.dir, 'jobs.ndjson'), '{"n":1}\n{"n":2}\n{"n":3}\n');
    writeFileSync(
      join(temp.dir, 'report.json'),
      JSON.stringify({
        queue: 'report',
        payload: { month: '2026-05' },
        children: [
          { queue: 'fetch', payload: { region: 'eu' } },
          { queue: 'fetch', payload: { region: 'us' } },
        ],
      }),
    );
    writeFileSync(
      join(temp.dir, 'resize.sh'),
      '#!/bin/sh\n# The payload on stdin, the result on stdout.\nnode -e \'let s="";process.stdin.on("data",(c)=>s+=c).on("end",()=>console.log(JSON.stringify({thumbnail:JSON.parse(s).image+".small"})))\'\n',
    );
    chmodSync(join(temp.dir, 'resize.sh'), 0o755);
  });
  after(async () => {
    await ferry?.close();
  });

  const lines = tourLines();
  it('has the commands the tour promises', () => {
    assert.ok(lines.length >= 9, lines.join('\n'));
  });
  for (const text of lines) {
    it(text, async () => {
      const words = text.match(/^npm run ferry -- (\S+)/);
      assert.ok(words, 'each line runs the CLI through npm run ferry');
      const check = checks[words[1] as string];
      assert.ok(check, `a check for ${words[1]}`);
      await check(new Line(text), opened);
    });
  }
});
