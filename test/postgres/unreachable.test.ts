/**
 * A database that does not answer, or cannot be used: opening fails with the reason within its
 * `connect_timeout`, and the CLI exits at once, having let go of its connections.
 */
import assert from 'node:assert/strict';
import { createServer, type Server, type Socket } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import { UnavailableError } from '../../src/core/errors.ts';
import { open } from '../../src/index.ts';
import { ferry } from '../cli/helpers.ts';
import { testSchema } from '../support/postgres.ts';

describe('PostgreSQL that does not answer', () => {
  let silent: Server;
  let port = 0;
  const sockets: Socket[] = [];
  before(async () => {
    // Accepts connections and never says a word, as a stopped host behind a proxy or a paused pooler does.
    silent = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as { port: number }).port;
  });
  after(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent.close(resolve));
  });

  it('open() fails as unavailable after connect_timeout, and the CLI exits 1 saying so', {
    timeout: 30_000,
  }, async () => {
    const url = `postgres://postgres@127.0.0.1:${port}/test?schema=ferry_silent&connect_timeout=0.5`;
    await assert.rejects(
      open(url),
      (error: Error) => error instanceof UnavailableError && /timeout.*nothing was applied/i.test(error.message),
    );
    const run = await ferry(['stats', 'q', '--store', url], { timeoutMs: 20_000 });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /timeout/i);
  });

  it('connect_timeout is a number of seconds from 0 (no limit, as in libpq) to 3600', { timeout: 10_000 }, async () => {
    for (const bad of ['-1', 'soon', '', '3601']) {
      await assert.rejects(
        open(`postgres://postgres@127.0.0.1:${port}/test?connect_timeout=${bad}`),
        /connect_timeout must be a number of seconds/,
      );
    }
  });
});

describe('PostgreSQL that cannot be used', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  before(async () => {
    schema = await testSchema('too_new');
  });
  after(async () => schema.drop());

  it('connect_timeout bounds connecting, not the wait for a free connection of the pool', {
    timeout: 30_000,
  }, async () => {
    // One pooled connection, held by a send queued behind a caller's transaction on the same key: a second
    // send waits for the connection longer than connect_timeout, and both land once the caller commits.
    const ferry = await open(`${schema.url}&connect_timeout=0.3`, { poolSize: 1 });
    const caller = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
    await caller.connect();
    try {
      await caller.query('BEGIN');
      await ferry.send('held', 0, { key: 'k', transaction: caller } as never);
      const behind = ferry.send('held', 1, { key: 'k' });
      // Later, so as not to share the blocked send's statement.
      await new Promise((resolve) => setTimeout(resolve, 50));
      const waiting = ferry.send('other', 2);
      await new Promise((resolve) => setTimeout(resolve, 1000));
      await caller.query('COMMIT');
      await Promise.all([behind, waiting]);
      assert.equal((await ferry.stats('held')).waiting + (await ferry.stats('held')).pending, 2);
      assert.equal((await ferry.stats('other')).waiting, 1);
    } finally {
      await caller.end();
      await ferry.close();
    }
  });

  it('a schema newer than this Ferry: the CLI says so and exits at once, its connections closed', {
    timeout: 30_000,
  }, async () => {
    await (await open(schema.url)).close();
    const admin = new pg.Client({ connectionString: schema.url.replace(/[?&]schema=[^&]*/, '') });
    await admin.connect();
    try {
      await admin.query(`UPDATE "${schema.schema}".meta SET value = '999' WHERE key = 'schema_version'`);
    } finally {
      await admin.end();
    }
    // The pool's idle connections kept the process alive for its idle timeout (10 s) after the message.
    const run = await ferry(['stats', 'q', '--store', schema.url], { timeoutMs: 8000 });
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /newer than this Ferry knows/);
  });
});
