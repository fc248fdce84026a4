/**
 * Ferry on one PostgreSQL as it scales out, beside raw PostgreSQL doing the same with the same concurrency,
 * in the same run (issue 9):
 *
 *   npx tsx bench/scale.ts            about 3 s per phase, after 5 s of warm-up
 *   npx tsx bench/scale.ts --quick    about 1 s per phase, after 0.5 s (a smoke run)
 *   npx tsx bench/scale.ts --json     machine-readable
 *   npx tsx bench/scale.ts --phases http    some phases only (sends, mixed, http; default all)
 *
 * Phases, each its processes started first, warmed up (5 s of the same workload, then drained and cleared: a
 * fresh process runs its code interpreted at first) and then released together (bench/scale-child.ts):
 *   sends   single awaited sends with 1, 4 and 32 in flight in one process (pool = in flight), and 2 processes
 *           × 16; baseline: autocommit single-row INSERTs into a bare jsonb table, same connections
 *   mixed   producers (8 sends in flight) and workers (32 handlers) in 1, 2 and 4 processes; baseline: the
 *           same INSERTs, consumed by a `DELETE … FOR UPDATE SKIP LOCKED LIMIT 32` loop in each process
 *   http    two `ferry serve` on the database, two client processes each spreading its lanes and workers
 *           across both servers' connect(); baseline: the raw mixed phase with two processes
 *
 * While each phase runs, pg_stat_activity is sampled about every 10 ms: of the samples of that phase's
 * connections (told apart by application_name) that were busy (state other than idle), the share waiting
 * on a heavyweight Lock and on an LWLock, by wait_event. Every phase checks its counts: all sent messages
 * (rows) stored, and in mixed phases each processed once. The database: FERRY_BENCH_PG_URL, else the tests'
 * (FERRY_TEST_PG_URL, the local server, else embedded); a fresh schema, dropped afterwards.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { Ferry } from '../src/core/types.ts';
import { open } from '../src/index.ts';
import { testDatabase } from '../test/support/postgres.ts';
import type { ChildConfig } from './scale-child.ts';

const { values } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    phases: { type: 'string', default: 'sends,mixed,http' },
  },
});
const PHASES = new Set(values.phases.split(','));
for (const phase of PHASES) {
  if (!['sends', 'mixed', 'http'].includes(phase)) throw new Error(`--phases: unknown phase ${phase}`);
}
const DURATION = values.quick ? 1000 : 3000;
/**
 * Every process runs its workload this long before the window: fresh Node processes run their code
 * interpreted at first, and two `ferry serve` with their clients took 10-15 s to reach their rate (a scratch
 * loop of 3 s windows: 185, 328, 388, 466, 514, 543 msgs/s), so a cold window measured mostly the warm-up.
 */
const WARM_MS = values.quick ? 500 : 5000;
const CAP = 100_000;
const CHILD = fileURLToPath(new URL('./scale-child.ts', import.meta.url));
const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const log = (line: string) => {
  if (!values.json) process.stderr.write(`${line}\n`);
};

interface Waits {
  /** Busy samples (state other than idle) of the phase's connections. */
  busy: number;
  lock: number;
  lwlock: number;
  /** `Lock:transactionid` → samples. */
  events: Record<string, number>;
}

interface Side {
  sent: number;
  sendsPerSecond: number;
  processedPerSecond?: number;
  p50?: number;
  p99?: number;
  waits: Waits;
}

interface Row {
  phase: 'sends' | 'mixed' | 'http';
  shape: string;
  raw: Side;
  ferry: Side;
}

/** Samples pg_stat_activity on its own connection until stopped. */
class Sampler {
  private running = false;
  private done: Promise<void> = Promise.resolve();
  private waits: Waits = { busy: 0, lock: 0, lwlock: 0, events: {} };

  private constructor(private readonly client: pg.Client) {}

  static async connect(url: string): Promise<Sampler> {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    return new Sampler(client);
  }

  close(): Promise<void> {
    return this.client.end();
  }

  start(applicationName: string): void {
    this.waits = { busy: 0, lock: 0, lwlock: 0, events: {} };
    this.running = true;
    this.done = (async () => {
      while (this.running) {
        const r = await this.client.query<{ type: string | null; event: string | null }>(
          `SELECT wait_event_type AS type, wait_event AS event FROM pg_stat_activity
            WHERE application_name = $1 AND state IS DISTINCT FROM 'idle' AND pid <> pg_backend_pid()`,
          [applicationName],
        );
        for (const row of r.rows) {
          this.waits.busy++;
          if (row.type === 'Lock') this.waits.lock++;
          else if (row.type === 'LWLock') this.waits.lwlock++;
          else continue;
          const name = `${row.type}:${row.event}`;
          this.waits.events[name] = (this.waits.events[name] ?? 0) + 1;
        }
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    })();
  }

  async stop(): Promise<Waits> {
    this.running = false;
    await this.done;
    return this.waits;
  }
}

/** A child process whose stdout JSON lines are collected from the start. */
class Child {
  readonly proc: ChildProcess;
  private readonly lines: string[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(args: string[]) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
    let buffer = '';
    this.proc.stdout?.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
        this.lines.push(buffer.slice(0, nl));
        buffer = buffer.slice(nl + 1);
      }
      this.wake?.();
    });
    this.proc.once('close', () => {
      this.ended = true;
      this.wake?.();
    });
  }

  async next<T>(): Promise<T> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return JSON.parse(line) as T;
      if (this.ended) throw new Error(`a child exited (code ${this.proc.exitCode}) before answering`);
      await new Promise<void>((resolve) => (this.wake = resolve));
    }
  }

  tell(word: string): void {
    this.proc.stdin?.write(`${word}\n`);
  }

  async exit(): Promise<void> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) await once(this.proc, 'close');
    if (this.proc.exitCode !== 0) throw new Error(`a child exited with ${this.proc.exitCode}`);
  }

  kill(): void {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN;
}

async function until(what: string, done: () => Promise<boolean>): Promise<void> {
  const started = Date.now();
  while (!(await done())) {
    // A hang guard: draining takes seconds even on a loaded machine.
    if (Date.now() - started > 120_000) throw new Error(`${what}: not done after 120 s`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function withParams(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

const base = process.env.FERRY_BENCH_PG_URL ?? (await testDatabase()).url;
const tag = randomBytes(4).toString('hex');
const schema = `scale_${tag}`;
const table = `"${schema}".rawq`;
const RAW_APP = `raw-scale-${tag}`;
const FERRY_APP = `ferry-scale-${tag}`;
const rawUrl = withParams(base, { application_name: RAW_APP });
const ferryUrl = withParams(base, { schema, application_name: FERRY_APP });

const admin = new pg.Client({ connectionString: base });
await admin.connect();
const sampler = await Sampler.connect(base);
await admin.query(`CREATE SCHEMA "${schema}"`);
await admin.query(
  `CREATE TABLE ${table} (id bigserial PRIMARY KEY, payload jsonb NOT NULL, created_at timestamptz NOT NULL DEFAULT now())`,
);
// The parent's own Ferry (migrations, counts, purges) goes under another name, so it is never sampled.
const parent: Ferry = await open(withParams(base, { schema, application_name: `ferry-scale-parent-${tag}` }));
const rawCount = async () => Number((await admin.query(`SELECT count(*) AS n FROM ${table}`)).rows[0].n);

/** Runs one side of a phase: its children ready, released together, sampled, drained, checked. */
async function side(
  configs: ChildConfig[],
  app: string,
  check: {
    stored: (sent: number) => Promise<void>;
    drained?: (sent: number) => Promise<boolean>;
    /** After the warm-up: waits until what it sent is processed (mixed), then clears it. */
    warmed: (sent: number) => Promise<void>;
  },
): Promise<Side> {
  const children = configs.map((c) => new Child([CHILD, JSON.stringify(c)]));
  try {
    for (const c of children) await c.next<{ ready: true }>();
    if (WARM_MS > 0) {
      for (const c of children) c.tell('warm');
      const warmed = await Promise.all(children.map((c) => c.next<{ warmed: number }>()));
      await check.warmed(warmed.reduce((n, w) => n + w.warmed, 0));
      for (const c of children) c.tell('reset');
      for (const c of children) await c.next<{ reset: true }>();
    }
    sampler.start(app);
    for (const c of children) c.tell('go');
    const sends = await Promise.all(children.map((c) => c.next<{ sent: number; ms: number }>()));
    const waits = await sampler.stop();
    const sent = sends.reduce((n, s) => n + s.sent, 0);
    const result: Side = {
      sent,
      sendsPerSecond: (sent / Math.max(...sends.map((s) => s.ms))) * 1000,
      waits,
    };
    if (check.drained) {
      const drained = check.drained;
      await until('draining', () => drained(sent));
      for (const c of children) c.tell('stop');
      const ends = await Promise.all(
        children.map((c) => c.next<{ handled: number; inWindow: number; latencies: number[] }>()),
      );
      const handled = ends.reduce((n, e) => n + e.handled, 0);
      if (handled !== sent) throw new Error(`count check failed: ${sent} sent, ${handled} processed`);
      const latencies = ends.flatMap((e) => e.latencies).sort((a, b) => a - b);
      result.processedPerSecond = (ends.reduce((n, e) => n + e.inWindow, 0) / DURATION) * 1000;
      result.p50 = percentile(latencies, 50);
      result.p99 = percentile(latencies, 99);
    } else {
      await check.stored(sent);
    }
    for (const c of children) await c.exit();
    return result;
  } finally {
    for (const c of children) c.kill();
  }
}

const rawChecks = {
  stored: async (sent: number) => {
    const n = await rawCount();
    if (n !== sent) throw new Error(`count check failed: ${sent} inserted, table holds ${n}`);
    await admin.query(`TRUNCATE ${table}`);
  },
  warmed: async () => {
    await admin.query(`TRUNCATE ${table}`);
  },
};
const rawDrained = {
  ...rawChecks,
  drained: async () => (await rawCount()) === 0,
  warmed: () => until('draining the warm-up', async () => (await rawCount()) === 0),
};

function ferryChecks(queue: string) {
  return {
    stored: async (sent: number) => {
      const s = await parent.stats(queue);
      if (s.waiting !== sent) throw new Error(`count check failed: ${sent} sent, ${s.waiting} waiting`);
      await parent.purge(queue);
    },
    drained: async (sent: number) => {
      const s = await parent.stats(queue);
      if (s.dead > 0) throw new Error(`count check failed: ${s.dead} dead`);
      return s.completed === sent && s.waiting + s.delayed + s.active === 0;
    },
    /** Sends only: clears the queue; with workers, first waits until they processed everything. */
    warmed: async (sent: number, working = false) => {
      if (working) {
        await until('draining the warm-up', async () => {
          const s = await parent.stats(queue);
          return s.completed === sent && s.waiting + s.delayed + s.active === 0;
        });
      }
      await parent.purge(queue);
    },
  };
}
function ferryDrained(queue: string) {
  const checks = ferryChecks(queue);
  return { ...checks, warmed: (sent: number) => checks.warmed(sent, true) };
}

const shapes = (procs: number, make: (i: number) => ChildConfig) => Array.from({ length: procs }, (_, i) => make(i));
const common = { durationMs: DURATION, warmMs: WARM_MS, cap: CAP };
const rows: Row[] = [];
const servers: Child[] = [];

try {
  for (const [procs, lanes] of PHASES.has('sends')
    ? ([
        [1, 1],
        [1, 4],
        [1, 32],
        [2, 16],
      ] as const)
    : []) {
    const shape = procs === 1 ? `${lanes}` : `${procs} processes × ${lanes}`;
    log(`sends, ${shape} in flight`);
    const queue = `scale-send-${procs}x${lanes}`;
    const raw = await side(
      shapes(procs, () => ({ role: 'raw-send', url: rawUrl, table, lanes, concurrency: 0, ...common })),
      RAW_APP,
      rawChecks,
    );
    const ferry = await side(
      shapes(procs, () => ({ role: 'ferry-send', url: ferryUrl, queue, lanes, concurrency: 0, ...common })),
      FERRY_APP,
      { stored: ferryChecks(queue).stored, warmed: ferryChecks(queue).warmed },
    );
    rows.push({ phase: 'sends', shape, raw, ferry });
  }

  for (const procs of PHASES.has('mixed') ? [1, 2, 4] : []) {
    const shape = `${procs} × (8 sending, 32 working)`;
    log(`producers and workers, ${shape}`);
    const queue = `scale-mixed-${procs}`;
    const raw = await side(
      shapes(procs, () => ({ role: 'raw-mixed', url: rawUrl, table, lanes: 8, concurrency: 32, ...common })),
      RAW_APP,
      rawDrained,
    );
    const ferry = await side(
      shapes(procs, () => ({ role: 'ferry-mixed', url: ferryUrl, queue, lanes: 8, concurrency: 32, ...common })),
      FERRY_APP,
      ferryDrained(queue),
    );
    await parent.purge(queue);
    rows.push({ phase: 'mixed', shape, raw, ferry });
  }

  if (PHASES.has('http')) {
    log('two ferry serve processes, 2 client processes across both');
    for (let i = 0; i < 2; i++) {
      servers.push(new Child([CLI, 'serve', '--store', ferryUrl, '--port', '0', '--json', '--log-level', 'warn']));
    }
    const urls = await Promise.all(servers.map(async (s) => (await s.next<{ url: string }>()).url));
    const queue = 'scale-http';
    const raw = await side(
      shapes(2, () => ({ role: 'raw-mixed', url: rawUrl, table, lanes: 8, concurrency: 32, ...common })),
      RAW_APP,
      rawDrained,
    );
    const ferry = await side(
      shapes(2, () => ({
        role: 'http-mixed',
        url: ferryUrl,
        servers: urls,
        queue,
        lanes: 8,
        concurrency: 32,
        ...common,
      })),
      FERRY_APP,
      ferryDrained(queue),
    );
    rows.push({ phase: 'http', shape: '2 servers, 2 × (8 sending, 32 working)', raw, ferry });
  }
} finally {
  for (const s of servers) {
    s.proc.kill('SIGTERM');
    await once(s.proc, 'close').catch(() => {});
  }
  await parent.close();
  await admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
  await admin.end();
  await sampler.close();
}

const int = (v: number | undefined) => (v === undefined ? '' : Math.round(v).toLocaleString('en-US'));
const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '–' : v.toFixed(1));
const ratio = (a: number | undefined, b: number | undefined) => (a && b ? `${(a / b).toFixed(2)}×` : '');
const share = (n: number, w: Waits) => (w.busy ? `${((n / w.busy) * 100).toFixed(1)}%` : '–');
const top = (w: Waits) =>
  Object.entries(w.events)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([name, n]) => `${name} ${share(n, w)}`)
    .join(', ');

if (values.json) {
  process.stdout.write(`${JSON.stringify({ node: process.version, durationMs: DURATION, rows }, null, 2)}\n`);
} else {
  const sends = rows.filter((r) => r.phase === 'sends');
  const mixed = rows.filter((r) => r.phase !== 'sends');
  const lines = [
    `Ferry on one PostgreSQL, ${DURATION / 1000} s per phase, node ${process.version}; raw = the same concurrency on a bare table, just before.`,
    'Lock / LWLock: share of busy pg_stat_activity samples of Ferry’s connections waiting on each (top wait events).',
    '',
    '| in flight | raw PostgreSQL commits/s | Ferry `send`s/s | ratio | Lock | LWLock | top waits |',
    '| --- | ---: | ---: | ---: | ---: | ---: | --- |',
    ...sends.map(
      (r) =>
        `| ${r.shape} | ${int(r.raw.sendsPerSecond)} | ${int(r.ferry.sendsPerSecond)} | ${ratio(r.ferry.sendsPerSecond, r.raw.sendsPerSecond)} | ${share(r.ferry.waits.lock, r.ferry.waits)} | ${share(r.ferry.waits.lwlock, r.ferry.waits)} | ${top(r.ferry.waits)} |`,
    ),
    '',
    '| processes | raw inserts/s | Ferry sends/s | ratio | raw processed/s | Ferry processed/s | ratio | raw p50 / p99 ms | Ferry p50 / p99 ms | Lock | LWLock | top waits |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
    ...mixed.map(
      (r) =>
        `| ${r.shape} | ${int(r.raw.sendsPerSecond)} | ${int(r.ferry.sendsPerSecond)} | ${ratio(r.ferry.sendsPerSecond, r.raw.sendsPerSecond)} | ${int(r.raw.processedPerSecond)} | ${int(r.ferry.processedPerSecond)} | ${ratio(r.ferry.processedPerSecond, r.raw.processedPerSecond)} | ${ms(r.raw.p50)} / ${ms(r.raw.p99)} | ${ms(r.ferry.p50)} / ${ms(r.ferry.p99)} | ${share(r.ferry.waits.lock, r.ferry.waits)} | ${share(r.ferry.waits.lwlock, r.ferry.waits)} | ${top(r.ferry.waits)} |`,
    ),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}
