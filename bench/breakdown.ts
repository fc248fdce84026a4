/**
 * Where a processed message's time goes on the embedded store: `npx tsx bench/breakdown.ts [memory:|sqlite:PATH]`.
 *
 * Runs work() over 20,000 pre-sent no-op messages at concurrency 50 and 200 and prints, per message, the
 * time inside each hot statement, inside the group-commit flush as a whole (BEGIN … COMMIT, fsync included),
 * and outside it (engine, worker, promises). Then the engine and worker alone, over a store that does no
 * I/O, for the floor of the JavaScript around the store. Wrapping adds a little time of its own; read the
 * figures against each other, not as absolutes.
 */
import { performance } from 'node:perf_hooks';
import { Engine } from '../src/engine/engine.ts';
import { open } from '../src/index.ts';
import type { Claimed, Store } from '../src/store/store.ts';
import { GroupCommit } from '../src/stores/sqlite/connection.ts';
import { EventLog } from '../src/stores/sqlite/events.ts';

const N = 20_000;
const spent: Record<string, number> = {};
const time = <A extends unknown[], R>(label: string, fn: (...args: A) => R) =>
  function (this: unknown, ...args: A): R {
    const t0 = performance.now();
    try {
      return fn.apply(this, args);
    } finally {
      spent[label] = (spent[label] ?? 0) + performance.now() - t0;
    }
  };

const commit = GroupCommit.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
commit.flush = time('flush (whole transaction)', commit.flush as () => unknown);
const log = EventLog.prototype as unknown as Record<string, (...args: unknown[]) => unknown>;
log.append = time('event log block', log.append as () => unknown);

async function drain(ferry: Awaited<ReturnType<typeof open>>, queue: string, concurrency: number): Promise<number> {
  let handled = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => {
    done = resolve;
  });
  const t0 = performance.now();
  const worker = ferry.work(
    queue,
    () => {
      if (++handled === N) done();
    },
    { concurrency },
  );
  await all;
  await worker.close();
  return performance.now() - t0;
}

const url = process.argv[2] ?? 'memory:';
const ferry = await open(url);
// The hot statements, each found in the module that owns it.
type Module = Record<string, Record<string, (...a: unknown[]) => unknown>>;
const parts = (ferry as unknown as { store: { p: Record<string, Module> } }).store.p;
const hot: [module: string, statement: string][] = [
  ['claim', 'claimable'],
  ['claim', 'lease'],
  ['settle', 'completeKnown'],
  ['sweep', 'expiredIn'],
];
for (const [module, name] of hot) {
  const statement = (parts[module] as Module)[name] as Record<string, (...a: unknown[]) => unknown>;
  for (const method of ['all', 'run', 'get'])
    statement[method] = time(name, (statement[method] as () => unknown).bind(statement));
}

console.log(`store ${url}, ${N} messages, µs per message`);
for (const concurrency of [50, 200]) {
  const queue = `breakdown-${concurrency}-${Date.now()}`;
  for (let b = 0; b < N; b += 1000) {
    await ferry.sendBatch(
      queue,
      Array.from({ length: 1000 }, (_, i) => ({ payload: { i: b + i } })),
    );
  }
  for (const key of Object.keys(spent)) delete spent[key];
  const ms = await drain(ferry, queue, concurrency);
  const flush = spent['flush (whole transaction)'] ?? 0;
  const rows = Object.entries(spent).map(([k, v]) => `${k} ${((v / N) * 1000).toFixed(2)}`);
  rows.push(`outside the flush ${(((ms - flush) / N) * 1000).toFixed(2)}`);
  console.log(`concurrency ${concurrency}: ${Math.round((N / ms) * 1000)} msgs/s; ${rows.join('; ')}`);
}
await ferry.close();

// The engine and worker alone: a store whose claim and complete answer at once.
let claimed = 0;
const instant = {
  capabilities: { shared: false, transactionalSend: false },
  async init() {},
  async claim(queue: string, max: number, _lease: number | null, now: number): Promise<Claimed[]> {
    const out: Claimed[] = [];
    for (let i = 0; i < max && claimed < N; i++, claimed++) {
      out.push({
        id: `m-${claimed}`,
        queue,
        payload: '{"i":1}',
        attempt: 1,
        receipt: `${claimed}.1.x`,
        priority: 0,
        key: null,
        headers: null,
        sentAt: now,
        leaseUntil: now + 30_000,
        lease: 30_000,
        deadline: null,
      });
    }
    return out;
  },
  async complete(items: unknown[]) {
    return items.map(() => 'completed');
  },
  async sweep() {
    return { expired: 0, removed: 0 };
  },
  async fireSchedules() {
    return 0;
  },
  async close() {},
} as unknown as Store;
const bare = await Engine.create(instant, { sweepInterval: 3_600_000 });
for (const concurrency of [50, 200]) {
  claimed = 0;
  const ms = await drain(bare, 'q', concurrency);
  console.log(`engine + worker alone, concurrency ${concurrency}: ${((ms / N) * 1000).toFixed(2)} µs per message`);
}
await bare.close();
