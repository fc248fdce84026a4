/**
 * Key limits across processes: four processes work one PostgreSQL database. With keyConcurrency 3, the event
 * log never shows more than 3 messages of a key active at once (overshoot 0) and shows 3 at some point; with
 * keyRateLimit { max: 7, per: 1h }, each key is delivered exactly 7 times however many consumers compete.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Ferry, FerryEvent } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { child as spawnChild } from '../support/child.ts';
import { testSchema } from '../support/postgres.ts';

const CHILD = fileURLToPath(new URL('./key-limits-child.ts', import.meta.url));
const PROCESSES = 4;
const KEYS = 6;
const PER_KEY = 30;
let schema: Awaited<ReturnType<typeof testSchema>>;

before(async () => {
  schema = await testSchema('key_limits');
});
after(async () => {
  await schema.drop();
});

/** The queue's events from the start of the log until `done` says enough. */
async function replay(ferry: Ferry, queue: string, done: (events: FerryEvent[]) => boolean): Promise<FerryEvent[]> {
  const events: FerryEvent[] = [];
  const stream = ferry.events({ queue, after: 0 });
  for await (const e of stream) {
    events.push(e);
    if (done(events)) break;
  }
  stream.close();
  return events;
}

async function waitUntil(what: string, check: () => Promise<boolean>): Promise<void> {
  const end = Date.now() + 120_000; // a hang guard only
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

it('four processes: keyConcurrency 3 never overshoots, keyRateLimit delivers exactly max per key per window', async () => {
  const ferry = await open(schema.url);
  const [conc, rate] = ['key-conc', 'key-rate'];
  await ferry.configure(conc, { keyConcurrency: 3, lease: '30s' });
  await ferry.configure(rate, { keyConcurrency: 10, keyRateLimit: { max: 7, per: '1h' }, lease: '30s' });
  const children = Array.from({ length: PROCESSES }, () => spawnChild(CHILD, [schema.url, conc, rate]));
  try {
    for (const c of children) assert.equal(await c.line(), 'ready');
    const batch = (keys: number, perKey: number, free: number) => {
      const out: { payload: { key: string | null; n: number }; key?: string }[] = [];
      for (let n = 0; n < perKey; n++) {
        for (let k = 0; k < keys; k++) out.push({ payload: { key: `k${k}`, n }, key: `k${k}` });
      }
      for (let n = 0; n < free; n++) out.push({ payload: { key: null, n } });
      return out;
    };
    await ferry.sendBatch(conc, batch(KEYS, PER_KEY, 20));
    await ferry.sendBatch(rate, batch(3, 20, 10));
    const total = KEYS * PER_KEY + 20;
    await waitUntil(
      'every keyConcurrency message completed',
      async () => (await ferry.stats(conc)).completed === total,
    );
    await waitUntil(
      '7 of each key and the 10 free ones delivered',
      async () => (await ferry.stats(rate)).completed === 31,
    );
    // The held messages stay held, however often the four processes ask.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const rateStats = await ferry.stats(rate);
    assert.equal(rateStats.completed + rateStats.active, 31);
    assert.equal(rateStats.waiting, 39);

    const keyOf = new Map<string, string | null>();
    for (const queue of [conc, rate]) {
      for (let cursor: string | null = null; ; ) {
        const page = await ferry.list(queue, { limit: 1000, cursor });
        for (const m of page.messages) keyOf.set(m.id, (m.payload as { key: string | null }).key);
        cursor = page.cursor;
        if (!cursor) break;
      }
    }

    let completions = 0;
    const events = await replay(ferry, conc, (e) => e.at(-1)?.type === 'completed' && ++completions === total);
    const active = new Map<string, number>();
    const peak = new Map<string, number>();
    for (const e of events) {
      const key = keyOf.get(e.id);
      if (!key) continue;
      if (e.type === 'active') active.set(key, (active.get(key) ?? 0) + 1);
      else if (e.type === 'completed' || e.type === 'retrying' || e.type === 'dead')
        active.set(key, (active.get(key) ?? 0) - 1);
      peak.set(key, Math.max(peak.get(key) ?? 0, active.get(key) ?? 0));
    }
    const overshoot = Math.max(0, ...[...peak.values()].map((p) => p - 3));
    console.log(
      `# keyConcurrency 3, ${PROCESSES} processes: peak per key ${[...peak.values()].join(', ')}; overshoot ${overshoot}`,
    );
    assert.equal(overshoot, 0, 'never more than 3 of a key active at once');
    assert.equal(Math.max(...peak.values()), 3, 'the limit is reached: keys do run 3 at once');

    let rateCompletions = 0;
    const rateEvents = await replay(ferry, rate, (e) => e.at(-1)?.type === 'completed' && ++rateCompletions === 31);
    const deliveries = new Map<string, number>();
    for (const e of rateEvents) {
      const key = keyOf.get(e.id);
      if (key && e.type === 'active') deliveries.set(key, (deliveries.get(key) ?? 0) + 1);
    }
    console.log(
      `# keyRateLimit 7 per hour, ${PROCESSES} processes: deliveries per key ${[...deliveries.values()].join(', ')}`,
    );
    assert.deepEqual([...deliveries.values()], [7, 7, 7]);
  } finally {
    for (const c of children) c.send('stop');
    await Promise.all(
      children.map(async (c) => {
        if (c.proc.exitCode === null && c.proc.signalCode === null) {
          const timer = setTimeout(() => c.proc.kill('SIGKILL'), 10_000);
          await once(c.proc, 'exit');
          clearTimeout(timer);
        }
      }),
    );
    await ferry.close();
  }
});
