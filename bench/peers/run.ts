/**
 * `npm run bench:peers`: Ferry (sqlite:, memory:, postgres:, over HTTP) beside BullMQ (the machine's Redis),
 * pg-boss and graphile-worker (its PostgreSQL) and the raw limits, in one invocation, on one machine:
 * each system in a child process of its own, the order rotated between runs, medians of RUNS runs.
 *
 *   npm run bench:peers                                   3 runs, a table, ratios, targets
 *   npm run bench:peers -- --json                         machine-readable, on stdout
 *   npm run bench:peers -- --runs 1 --only bullmq,ferry-sqlite
 *   RUNS=1 N_SINGLE=200 N_BULK=2000 N_PROCESS=2000 N_LAT=50 N_RAW_SINGLE=500 N_RAW_BATCH=5000 HTTP_REQUESTS=2000 \
 *     npm run bench:peers                                 a smoke run
 *
 * Installs this folder's own dependencies (npm ci) the first time. A child that fails (a count check, a
 * timeout, a missing service) is reported as FAILED and makes the exit status 1.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { connect as tcp } from 'node:net';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { DATA, ROOT, tsArgs } from './http-load.ts';
import { ratios, render, rows, type Samples, targets } from './report.ts';
import { ensureDatabase, PG_URL, REDIS, sizes } from './sizes.ts';

const here = dirname(fileURLToPath(import.meta.url));

/** Peers and Ferry interleaved, so a drift in the machine's load does not land on one side only. */
const SYSTEMS: { name: string; file: string; args?: string[]; needs: ('redis' | 'postgres')[] }[] = [
  { name: 'bullmq', file: 'bullmq.mjs', needs: ['redis'] },
  { name: 'ferry-sqlite', file: 'ferry.ts', args: ['sqlite'], needs: [] },
  { name: 'pg-boss', file: 'pg-boss.mjs', needs: ['postgres'] },
  { name: 'ferry-postgres', file: 'ferry.ts', args: ['postgres'], needs: ['postgres'] },
  { name: 'graphile-worker', file: 'graphile-worker.mjs', needs: ['postgres'] },
  { name: 'ferry-memory', file: 'ferry.ts', args: ['memory'], needs: [] },
  { name: 'raw-sqlite', file: 'raw.ts', args: ['sqlite'], needs: [] },
  { name: 'ferry-http', file: 'ferry.ts', args: ['http'], needs: [] },
  { name: 'raw-postgres', file: 'raw.ts', args: ['postgres'], needs: ['postgres'] },
  { name: 'http', file: join('..', 'http.ts'), args: ['--runs', '1', '--json'], needs: [] },
];

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: process.env.RUNS ?? '3' },
    only: { type: 'string' },
    json: { type: 'boolean', default: false },
  },
});
const runs = Number(values.runs);
if (!Number.isInteger(runs) || runs < 1)
  throw new Error(`--runs (or RUNS) must be a positive integer; got ${values.runs}`);
const only = values.only?.split(',').map((s) => s.trim());
const unknown = only?.filter((name) => !SYSTEMS.some((s) => s.name === name)) ?? [];
if (unknown.length)
  throw new Error(`unknown system ${unknown.join(', ')}; known: ${SYSTEMS.map((s) => s.name).join(', ')}`);
const systems = SYSTEMS.filter((s) => !only || only.includes(s.name));
const timeoutMs = Number(process.env.CHILD_TIMEOUT_S ?? 900) * 1000;
const say = (line: string) => process.stderr.write(`${line}\n`);

function install(): void {
  if (existsSync(join(here, 'node_modules'))) return;
  const command = existsSync(join(here, 'package-lock.json')) ? 'ci' : 'install';
  say(`bench/peers: npm ${command} (first run)`);
  const done = spawnSync('npm', [command, '--no-audit', '--no-fund'], { cwd: here, stdio: ['ignore', 2, 2] });
  if (done.status !== 0) throw new Error(`npm ${command} in bench/peers failed (${done.status ?? done.signal})`);
}

/** Redis answers PING with +PONG; the reason it does not, else null. */
function redisDown(): Promise<string | null> {
  return new Promise((resolve) => {
    const socket = tcp(REDIS.port, REDIS.host);
    const timer = setTimeout(() => finish(`no answer from Redis at ${REDIS.host}:${REDIS.port}`), 2000);
    const finish = (reason: string | null) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    socket.once('connect', () => socket.write('PING\r\n'));
    socket.once('data', (data) => finish(data.toString().startsWith('+PONG') ? null : `Redis said ${data}`));
    socket.once('error', (error) => finish(`Redis at ${REDIS.host}:${REDIS.port}: ${error.message}`));
  });
}

async function postgresDown(): Promise<string | null> {
  try {
    await ensureDatabase();
    return null;
  } catch (error) {
    return `PostgreSQL (${PG_URL}): ${(error as Error).message}`;
  }
}

async function versions(redisUp: boolean, pgUp: boolean): Promise<string> {
  const pkg = (name: string) => {
    try {
      return `${name} ${JSON.parse(readFileSync(join(here, 'node_modules', name, 'package.json'), 'utf8')).version}`;
    } catch {
      return `${name} ?`;
    }
  };
  const parts = [`node ${process.version}`, ...['bullmq', 'ioredis', 'pg-boss', 'graphile-worker'].map(pkg)];
  if (pgUp) {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    const { rows } = await client.query<{ v: string; fsync: string; sc: string }>(
      "SELECT current_setting('server_version') AS v, current_setting('fsync') AS fsync, current_setting('synchronous_commit') AS sc",
    );
    const settings = rows[0]!;
    parts.push(`PostgreSQL ${settings.v} (fsync ${settings.fsync}, synchronous_commit ${settings.sc})`);
    await client.end();
  }
  if (redisUp) {
    const info = spawnSync('redis-cli', ['-h', REDIS.host, '-p', String(REDIS.port), 'INFO', 'server'], {
      encoding: 'utf8',
    });
    const version = /redis_version:(\S+)/.exec(info.stdout ?? '')?.[1];
    // BullMQ's durability is the server's: say whether it persists at all.
    const config = (key: string) =>
      spawnSync('redis-cli', ['-h', REDIS.host, '-p', String(REDIS.port), '--raw', 'CONFIG', 'GET', key], {
        encoding: 'utf8',
      })
        .stdout?.split('\n')[1]
        ?.trim();
    const aof = config('appendonly');
    const persistence =
      aof === 'yes' ? `AOF, appendfsync ${config('appendfsync')}` : `no AOF, save "${config('save') ?? ''}"`;
    if (version) parts.push(`Redis ${version} (${persistence})`);
  }
  return parts.join(', ');
}

/**
 * What a child that died early (a timeout, a crash) left behind: its schemas in the benchmark database and
 * its files under bench/peers/data, all named with its pid. (The http child's server grandchild cleans up
 * after itself on SIGTERM or when its stdin closes.)
 */
async function sweep(pid: number | undefined): Promise<void> {
  if (!pid) return;
  for (const f of readdirSync(DATA, { withFileTypes: true })) {
    if (f.isFile() && f.name.includes(`-${pid}`)) rmSync(join(DATA, f.name), { force: true });
  }
  if (pgReason) return;
  const client = new pg.Client({ connectionString: PG_URL });
  await client.connect();
  try {
    const { rows } = await client.query<{ name: string }>(
      "SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE 'peers\\_%' AND nspname LIKE '%\\_' || $1",
      [String(pid)],
    );
    for (const { name } of rows) await client.query(`DROP SCHEMA "${name}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Runs one system's child; its figures, or throws with the reason and the tail of its stderr. */
function child(system: (typeof SYSTEMS)[number]): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, tsArgs(join(here, system.file), system.args), {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stdout.on('data', (d) => {
      out += d;
    });
    proc.stderr.on('data', (d) => {
      err += d;
      if (!values.json) process.stderr.write(d);
    });
    const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').at(-1) ?? '';
      if (code === 0 && last.startsWith('{')) {
        resolve((JSON.parse(last) as { figures: Record<string, number> }).figures);
        return;
      }
      const why = signal === 'SIGKILL' ? `timed out after ${timeoutMs / 1000} s` : `exit ${code ?? signal}`;
      const tail = err.trim().split('\n').slice(-3).join(' | ');
      sweep(proc.pid).then(
        () => reject(new Error(`${why}: ${tail}`)),
        (error) => reject(new Error(`${why}: ${tail} (and cleaning up after it: ${error.message})`)),
      );
    });
  });
}

install();
mkdirSync(DATA, { recursive: true });
const started = new Date();
const loadBefore = loadavg();
const [redisReason, pgReason] = await Promise.all([redisDown(), postgresDown()]);
const software = await versions(!redisReason, !pgReason);
const http = {
  requests: Number(process.env.HTTP_REQUESTS ?? 20_000),
  concurrency: Number(process.env.HTTP_CONCURRENCY ?? 32),
};
const header = [
  `bench:peers, ${started.toISOString().slice(0, 16)}Z, ${runs} run(s), ${cpus().length} cores, ${software}`,
  `sizes: a ${sizes.single}, b ${sizes.bulk} in batches of ${sizes.batch}, c ${sizes.process} at concurrency ${sizes.concurrency}, d ${sizes.latency} sends ≥ ${sizes.gapMs} ms apart; raw ${sizes.rawSingle} single, ${sizes.rawBatch} batched; HTTP ${http.requests} requests ×${http.concurrency}`,
];

const samples: Samples = new Map();
const failures: string[] = [];
for (let run = 1; run <= runs; run++) {
  // Rotate by a stride, so each system runs early in one run and late in another.
  const shift = ((run - 1) * Math.ceil(systems.length / runs)) % systems.length;
  const order = [...systems.slice(shift), ...systems.slice(0, shift)];
  for (const system of order) {
    const missing = system.needs
      .map((n) => (n === 'redis' ? redisReason : pgReason))
      .filter((r): r is string => r !== null);
    if (missing.length) {
      failures.push(`${system.name}, run ${run}: ${missing.join('; ')}`);
      continue;
    }
    say(`[${new Date().toISOString().slice(11, 19)}] run ${run}/${runs}: ${system.name}`);
    try {
      const figures = await child(system);
      const bySystem = samples.get(system.name) ?? new Map();
      for (const [key, value] of Object.entries(figures))
        bySystem.set(key, [...(bySystem.get(key) ?? []), { run, value }]);
      samples.set(system.name, bySystem);
    } catch (error) {
      failures.push(`${system.name}, run ${run}: ${(error as Error).message}`);
      say(`  FAILED ${system.name}: ${(error as Error).message}`);
    }
  }
}

const loadAfter = loadavg();
const load = (l: number[]) => l.map((x) => x.toFixed(2)).join(' ');
header.push(
  `load average (1, 5, 15 min): ${load(loadBefore)} at start, ${load(loadAfter)} at end; took ${Math.round((Date.now() - started.getTime()) / 1000)} s`,
);
const table = rows(
  samples,
  SYSTEMS.map((s) => s.name),
);
if (values.json) {
  const result = {
    started: started.toISOString(),
    cores: cpus().length,
    loadavg: { start: loadBefore, end: loadAfter },
    software,
    sizes: { ...sizes, http },
    runs,
    table,
    ratios: ratios(table),
    targets: targets(table),
    failures,
  };
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
} else {
  process.stdout.write(render(table, header, failures));
}
process.exitCode = failures.length ? 1 : 0;
