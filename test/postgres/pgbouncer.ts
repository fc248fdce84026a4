/**
 * A PgBouncer of the test's own in transaction mode (Debian's `pgbouncer`; `.ci/run` installs it), in front
 * of the test database: a temporary config, a free port, trust auth towards the clients, logs kept for the
 * failure message. As root it runs as `postgres` (PgBouncer refuses root).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { accessSync, chmodSync, constants, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

const CANDIDATES = ['/usr/sbin/pgbouncer', '/usr/bin/pgbouncer', '/usr/local/bin/pgbouncer'];

export interface Bouncer {
  /** `url` with host and port replaced by PgBouncer's (same user, database and query). */
  pooled(url: string): string;
  /** What PgBouncer logged, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

function binary(): string {
  for (const path of CANDIDATES) {
    try {
      accessSync(path, constants.X_OK);
      return path;
    } catch {}
  }
  throw new Error(
    `pgbouncer is not installed (looked in ${CANDIDATES.join(', ')}): apt-get install -y pgbouncer (.ci/run does)`,
  );
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  await once(server, 'close');
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/**
 * Starts PgBouncer for the database at `direct` with `serverPool` server connections per user and database,
 * fewer than the clients will open, so that clients really share server connections.
 */
export async function startBouncer(direct: string, serverPool = 4): Promise<Bouncer> {
  const path = binary();
  const target = new URL(direct);
  const user = decodeURIComponent(target.username || 'postgres');
  const database = decodeURIComponent(target.pathname.slice(1) || 'postgres');
  const dir = mkdtempSync(join(tmpdir(), 'ferry-pgbouncer-'));
  // PgBouncer, running as postgres when we are root, reads its files from here.
  chmodSync(dir, 0o755);
  const port = await freePort();
  const server = [
    `host=${target.hostname}`,
    `port=${target.port || 5432}`,
    `dbname=${database}`,
    `user=${user}`,
    ...(target.password ? [`password=${decodeURIComponent(target.password)}`] : []),
  ].join(' ');
  writeFileSync(join(dir, 'users.txt'), `"${user}" ""\n`, { mode: 0o644 });
  writeFileSync(
    join(dir, 'pgbouncer.ini'),
    [
      '[databases]',
      `${database} = ${server}`,
      '[pgbouncer]',
      'listen_addr = 127.0.0.1',
      `listen_port = ${port}`,
      'unix_socket_dir =',
      'auth_type = trust',
      `auth_file = ${join(dir, 'users.txt')}`,
      'pool_mode = transaction',
      `default_pool_size = ${serverPool}`,
      'max_client_conn = 500',
      // Hand out server connections in turn rather than the last used: a client's consecutive statements then
      // land on different server connections, so state left on one connection shows up.
      'server_round_robin = 1',
      'ignore_startup_parameters = extra_float_digits',
      '',
    ].join('\n'),
    { mode: 0o644 },
  );
  const args = [...(process.getuid?.() === 0 ? ['-u', 'postgres'] : []), join(dir, 'pgbouncer.ini')];
  const proc: ChildProcess = spawn(path, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  proc.stdout?.setEncoding('utf8').on('data', (c: string) => (output += c));
  proc.stderr?.setEncoding('utf8').on('data', (c: string) => (output += c));
  const pooled = (url: string) => {
    const u = new URL(url);
    u.hostname = '127.0.0.1';
    u.port = String(port);
    return u.toString();
  };
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGINT');
      await once(proc, 'close');
    }
    rmSync(dir, { recursive: true, force: true });
  };
  // Ready once a query goes through it; a hang guard of about 30 s.
  for (let attempt = 0; ; attempt++) {
    if (proc.exitCode !== null) {
      await stop();
      throw new Error(`pgbouncer exited with ${proc.exitCode}: ${output}`);
    }
    const client = new pg.Client({ connectionString: pooled(direct), connectionTimeoutMillis: 1000 });
    try {
      await client.connect();
      await client.query('SELECT 1');
      break;
    } catch (error) {
      if (attempt >= 150) {
        await stop();
        throw new Error(`pgbouncer did not answer: ${(error as Error).message}\n${output}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      await client.end().catch(() => {});
    }
  }
  return { pooled, log: () => output, stop };
}
