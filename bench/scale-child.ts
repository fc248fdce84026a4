/**
 * One process of bench/scale.ts: `scale-child.ts '<ChildConfig JSON>'`. It prepares (connects, starts its
 * worker), prints `{"ready":true}` and waits for `go` on stdin, so every process of a phase starts together.
 * With `warmMs`, it first waits for `warm`, runs its workload that long (a process that has run a while: code
 * compiled, pools and caches filled), prints `{"warmed"}`, and after `reset` (the parent has drained and
 * cleared what it sent) forgets what it counted and prints `{"reset":true}`.
 * Then for `durationMs` it sends from `lanes` loops, each awaiting one single send (or one autocommit
 * INSERT) at a time, and prints `{"sent", "ms"}`. Send-only roles exit there. Mixed roles keep consuming
 * until `stop` (the parent sends it once every message sent is processed), then print
 * `{"handled", "inWindow", "latencies"}`: every message this process started, those it started during the
 * window, and each one's send → start time in ms (by the shared wall clock of one machine).
 */
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import pg from 'pg';
import { connect } from '../src/client/index.ts';
import type { Ferry } from '../src/core/types.ts';
import { open } from '../src/index.ts';

export type Role = 'raw-send' | 'ferry-send' | 'raw-mixed' | 'ferry-mixed' | 'http-mixed';

export interface ChildConfig {
  role: Role;
  /** PostgreSQL URL (raw: the database; ferry: the store URL with its schema), with an application_name. */
  url: string;
  /** http-mixed: the servers to spread lanes and workers across. */
  servers?: string[];
  /** raw: the schema-qualified, quoted table. */
  table?: string;
  queue?: string;
  /** Sends in flight. */
  lanes: number;
  /** Mixed: handlers at once (Ferry), or rows per `DELETE … SKIP LOCKED LIMIT n` (raw). */
  concurrency: number;
  durationMs: number;
  /** How long the workload runs before the measured window (0: none). */
  warmMs: number;
  /** An upper bound on sends per lane, whatever the duration. */
  cap: number;
}

const config = JSON.parse(process.argv[2] ?? '{}') as ChildConfig;
const say = (value: unknown) => process.stdout.write(`${JSON.stringify(value)}\n`);
const wallNow = () => performance.timeOrigin + performance.now();

const lines = createInterface({ input: process.stdin });
const waiters = new Map<string, () => void>();
lines.on('line', (line) => waiters.get(line.trim())?.());
// The parent ended without releasing this process: do not linger as an orphan holding connections.
lines.on('close', () => process.exit(1));
const signal = (word: string) => new Promise<void>((resolve) => waiters.set(word, resolve));
const warm = signal('warm');
const reset = signal('reset');
const go = signal('go');
const stop = signal('stop');

/** Runs `lanes` loops of awaited `once()` until the window closes; answers how many completed. */
async function lanes(
  once: (lane: number, i: number) => Promise<unknown>,
  ms = config.durationMs,
): Promise<{ sent: number; ms: number }> {
  const t0 = performance.now();
  const deadline = t0 + ms;
  let sent = 0;
  await Promise.all(
    Array.from({ length: config.lanes }, async (_, lane) => {
      for (let i = 0; i < config.cap && performance.now() < deadline; i++) {
        await once(lane, i);
        sent++;
      }
    }),
  );
  return { sent, ms: performance.now() - t0 };
}

/** Handler starts: how many, how many inside the window, and the send → start time of each. */
class Starts {
  handled = 0;
  inWindow = 0;
  latencies: number[] = [];
  windowEnd = Number.POSITIVE_INFINITY;
  record(sentAt: number): void {
    this.handled++;
    const now = wallNow();
    // Every message was sent in the window; those that start after it (a backlog) count for latency too.
    this.latencies.push(now - sentAt);
    if (now <= this.windowEnd) this.inWindow++;
  }
  clear(): void {
    this.handled = 0;
    this.inWindow = 0;
    this.latencies = [];
  }
}

/** The warm-up, when the config asks for one (see the header). */
async function warmUp(once: (lane: number, i: number) => Promise<unknown>, starts: Starts): Promise<void> {
  if (config.warmMs <= 0) return;
  await warm;
  say({ warmed: (await lanes(once, config.warmMs)).sent });
  await reset;
  starts.clear();
  say({ reset: true });
}

async function raw(): Promise<void> {
  const mixed = config.role === 'raw-mixed';
  const pool = new pg.Pool({ connectionString: config.url, max: config.lanes + (mixed ? 1 : 0) });
  const insert = `INSERT INTO ${config.table} (payload) VALUES ($1)`;
  // Open every connection before the window, as Ferry's pool is warm by the time it sends.
  await Promise.all(Array.from({ length: config.lanes }, () => pool.query('SELECT 1')));
  const starts = new Starts();
  let consuming = true;
  let consumer: Promise<void> = Promise.resolve();
  if (mixed) {
    const client = await pool.connect();
    const take = `DELETE FROM ${config.table} WHERE id IN (SELECT id FROM ${config.table} ORDER BY id FOR UPDATE SKIP LOCKED LIMIT ${config.concurrency}) RETURNING payload`;
    consumer = (async () => {
      try {
        while (consuming) {
          const r = await client.query<{ payload: { t: number } }>(take);
          for (const row of r.rows) starts.record(row.payload.t);
          if (r.rows.length === 0) await new Promise((resolve) => setTimeout(resolve, 5));
        }
      } finally {
        client.release();
      }
    })();
  }
  say({ ready: true });
  const once = () => pool.query(insert, [{ t: wallNow() }]);
  await warmUp(once, starts);
  await go;
  starts.windowEnd = wallNow() + config.durationMs;
  say(await lanes(once));
  if (mixed) {
    await stop;
    consuming = false;
    await consumer;
    say({ handled: starts.handled, inWindow: starts.inWindow, latencies: starts.latencies });
  }
  await pool.end();
}

async function ferry(): Promise<void> {
  const queue = config.queue as string;
  const handles: Ferry[] =
    config.role === 'http-mixed'
      ? await Promise.all((config.servers ?? []).map((url) => connect(url)))
      : [await open(config.url, { poolSize: config.lanes + (config.role === 'ferry-mixed' ? 4 : 0) })];
  const starts = new Starts();
  const workers =
    config.role === 'ferry-send'
      ? []
      : handles.map((f) =>
          f.work<{ t: number }>(queue, (job) => starts.record(job.payload.t), {
            concurrency: Math.max(1, Math.round(config.concurrency / handles.length)),
            onError: (error) => process.stderr.write(`worker: ${(error as Error)?.message ?? error}\n`),
          }),
        );
  say({ ready: true });
  // Lanes take the handles in turn: with two servers, half the lanes send through each.
  const once = (lane: number) => (handles[lane % handles.length] as Ferry).send(queue, { t: wallNow() });
  await warmUp(once, starts);
  await go;
  starts.windowEnd = wallNow() + config.durationMs;
  say(await lanes(once));
  if (workers.length > 0) {
    await stop;
    await Promise.all(workers.map((w) => w.close()));
    say({ handled: starts.handled, inWindow: starts.inWindow, latencies: starts.latencies });
  }
  await Promise.all(handles.map((f) => f.close()));
}

(config.role.startsWith('raw') ? raw() : ferry()).then(
  // Exit once stdout has taken the last answer: a mixed phase's latencies make a line of several hundred KB,
  // which the pipe had not taken yet when the process exited at once (the parent saw no answer).
  () => process.stdout.write('', () => process.exit(0)),
  (error: unknown) => {
    process.stderr.write(`scale-child ${config.role}: ${(error as Error)?.stack ?? error}\n`);
    process.exit(1);
  },
);
