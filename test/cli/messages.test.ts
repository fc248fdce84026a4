/** What the CLI says when something is wrong: the right error, a hint to fix it, and nothing created. */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { MessagePage } from '../../src/core/types.ts';
import { ferry, finish, firstLine, json, start, tempDir } from './helpers.ts';

const temp = tempDir();
after(() => temp.remove());

/** A port nothing listens on: one the system just handed out and took back. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

describe('ferry messages', () => {
  it('read commands on a sqlite: path that does not exist create nothing and say so; send creates it', async () => {
    const dir = join(temp.dir, 'typo', 'dir');
    const store = `sqlite:${join(dir, 'x.db')}`;
    for (const args of [['stats'], ['ls'], ['ls', 'q'], ['get', '01900000-0000-7000-8000-000000000000'], ['events']]) {
      const run = await ferry([...args, '--store', store]);
      assert.equal(run.code, 1, `${args.join(' ')}: ${run.stderr}`);
      assert.match(run.stderr, /no Ferry store at .*x\.db.*does not create one/);
      assert.equal(existsSync(join(temp.dir, 'typo')), false, `${args.join(' ')} created nothing`);
    }
    const sent = await ferry(['send', 'q', '1', '--store', store]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.ok(existsSync(join(dir, 'x.db')), 'a command that writes creates the store');
    const stats = await ferry(['stats', '--store', store]);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /^q\s+1/m);
  });

  it('a refused connection says why and claims nothing about having been applied', async () => {
    const port = await closedPort();
    const http = await ferry(['stats', '--server', `http://127.0.0.1:${port}`]);
    assert.equal(http.code, 1);
    assert.match(
      http.stderr,
      new RegExp(`cannot reach the Ferry server at http://127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`),
    );
    const pg = await ferry(['stats', '--store', `postgres://postgres@127.0.0.1:${port}/test`]);
    assert.equal(pg.code, 1);
    assert.match(pg.stderr, /ECONNREFUSED/);
    assert.doesNotMatch(pg.stderr, /may or may not/, 'a connection that was never made applied nothing');
    assert.match(pg.stderr, /nothing was applied/);
  });

  it('--server without a scheme is taken as http://', async (t) => {
    const server = start(['serve', '--store', 'memory:', '--port', '0', '--json']);
    const done = finish(server, '', 60_000);
    t.after(() => server.kill('SIGKILL'));
    const { url } = JSON.parse(await firstLine(server)) as { url: string };
    const hostPort = url.replace(/^http:\/\//, '').replace('127.0.0.1', 'localhost');
    const stats = await ferry(['stats', '--server', hostPort]);
    assert.equal(stats.code, 0, stats.stderr);
    assert.match(stats.stdout, /no queues yet/);
    const ftp = await ferry(['stats', '--server', 'ftp://localhost:7070']);
    assert.equal(ftp.code, 2);
    assert.match(ftp.stderr, /--server must be an http:\/\/ or https:\/\/ URL/);
    server.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });

  it('a port in use says so and points to --port', async () => {
    const busy: Server = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = busy.address() as { port: number };
      const run = await ferry(['serve', '--store', 'memory:', '--port', String(port), '--log-level', 'silent']);
      assert.equal(run.code, 1, run.stderr);
      assert.match(run.stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use.*--port`));
    } finally {
      await new Promise((resolve) => busy.close(resolve));
    }
  });

  it('the ls paging hint repeats --state and --limit, and following it gives the next page', async () => {
    const store = `sqlite:${join(temp.dir, 'paging.db')}`;
    const run = (args: string[]) => ferry([...args, '--store', store]);
    for (let i = 0; i < 3; i++) assert.equal((await run(['send', 'pages', String(i)])).code, 0);
    const first = await run(['ls', 'pages', '--state', 'waiting', '--limit', '2']);
    assert.equal(first.code, 0, first.stderr);
    const hint = first.stdout.match(/^more: (ferry ls .*)$/m)?.[1];
    assert.ok(hint, first.stdout);
    assert.match(hint, /^ferry ls pages --state waiting --limit 2 --cursor \S+$/);
    const next = json<MessagePage>(await run([...hint.split(' ').slice(1), '--json']));
    assert.equal(next.messages.length, 1);
    assert.equal(next.messages[0]?.state, 'waiting');
  });
});
