/**
 * Job timeout precision: how long after an attempt's deadline its failure is recorded, on a real clock.
 *
 *   npx tsx bench/timeout-precision.ts [--messages 400] [--timeout 200ms] [--concurrency 20] [--json]
 *
 * For each home (an SQLite file, then PostgreSQL on a fresh schema): a queue whose messages time out after
 * `--timeout` with one attempt, and a worker whose handler hangs until its `job.signal` fires (then returns:
 * its late ack is refused). Each message's `dead` event carries the TimeoutError; two lags per message:
 * `recorded` = the event's `at` (the store's time of the failure) − the delivery's deadline, and `observed`
 * = when this process received the event − the deadline. The worker settles at the deadline (it asks the
 * store to expire the queue's leases then); the sweep (every second) and claims are the fallback.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseDuration } from '../src/core/duration.ts';
import { type Ferry, open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';

const { values } = parseArgs({
  options: {
    messages: { type: 'string', default: '400' },
    timeout: { type: 'string', default: '200ms' },
    concurrency: { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.messages);
const TIMEOUT = parseDuration(values.timeout, '--timeout');
const CONCURRENCY = Number(values.concurrency);

interface Lags {
  home: string;
  messages: number;
  recorded: { p50: number; p99: number; max: number };
  observed: { p50: number; p99: number; max: number };
}

function quantiles(values: number[]): { p50: number; p99: number; max: number } {
  const sorted = [...values].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { p50: at(0.5), p99: at(0.99), max: sorted[sorted.length - 1] as number };
}

async function measure(home: string, ferry: Ferry): Promise<Lags> {
  const queue = `precision-${Date.now()}`;
  await ferry.configure(queue, { timeout: TIMEOUT, maxAttempts: 1 });
  const deadlines = new Map<string, number>();
  const recorded: number[] = [];
  const observed: number[] = [];
  const stream = ferry.events({ queue, types: ['dead'] });
  await stream.since();
  const seen = (async () => {
    for await (const event of stream) {
      const now = Date.now();
      const deadline = deadlines.get(event.id);
      if (deadline === undefined || event.error?.name !== 'TimeoutError') {
        throw new Error(`unexpected event ${JSON.stringify(event)}`);
      }
      recorded.push(Date.parse(event.at) - deadline);
      observed.push(now - deadline);
      if (recorded.length === N) return;
    }
  })();
  const worker = ferry.work(
    queue,
    (job) =>
      new Promise<string>((resolve) => {
        deadlines.set(job.id, Date.parse(job.deadline as string));
        job.signal.addEventListener('abort', () => resolve('too late'), { once: true });
      }),
    {
      concurrency: CONCURRENCY,
      prefetch: 0,
      onError: (error) => console.error(error),
    },
  );
  await ferry.sendBatch(
    queue,
    Array.from({ length: N }, (_, i) => ({ payload: i })),
  );
  await seen;
  stream.close();
  await worker.close();
  return { home, messages: N, recorded: quantiles(recorded), observed: quantiles(observed) };
}

const results: Lags[] = [];
const dir = mkdtempSync(join(tmpdir(), 'ferry-precision-'));
try {
  const sqlite = await open(`sqlite:${join(dir, 'ferry.db')}`);
  results.push(await measure('sqlite', sqlite));
  await sqlite.close();
} finally {
  rmSync(dir, { recursive: true, force: true });
}
const schema = await testSchema('timeout_precision');
try {
  const postgres = await open(schema.url);
  results.push(await measure('postgres', postgres));
  await postgres.close();
} finally {
  await schema.drop();
}

if (values.json) console.log(JSON.stringify(results, null, 2));
else {
  console.log(`timeout ${TIMEOUT} ms, ${N} messages, worker concurrency ${CONCURRENCY}; lag after the deadline, ms`);
  for (const r of results) {
    console.log(
      `${r.home.padEnd(9)} recorded p50 ${r.recorded.p50} p99 ${r.recorded.p99} max ${r.recorded.max}` +
        ` | observed p50 ${r.observed.p50} p99 ${r.observed.p99} max ${r.observed.max}`,
    );
  }
}
