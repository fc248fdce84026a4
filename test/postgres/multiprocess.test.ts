/**
 * Four processes on one database, each sending, working and following events() at once: 4,000 keyed
 * messages, single sends and batches, random failures and retries. From the event log: each message completed
 * exactly once, no two leases of a message (nor of a key) ever overlapped, each key's messages completed in
 * send order; and every process's live reader saw the log the replay shows, in the same order.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FerryEvent } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { child as spawnChild } from '../support/child.ts';
import { testSchema } from '../support/postgres.ts';

const CHILD = fileURLToPath(new URL('./multiprocess-child.ts', import.meta.url));
const PROCESSES = 4;
const TOTAL = 4000;
let schema: Awaited<ReturnType<typeof testSchema>>;

before(async () => {
  schema = await testSchema('multiprocess');
});
after(async () => {
  await schema.drop();
});

type Entry = [number, string, string];

/** `a` and `b` agree where both have read: the shorter is a prefix of the longer. */
function assertSameOrder(a: Entry[], b: Entry[], label: string): void {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (JSON.stringify(a[i]) !== JSON.stringify(b[i])) {
      assert.fail(`${label}: readers disagree at position ${i}: ${JSON.stringify(a[i])} vs ${JSON.stringify(b[i])}`);
    }
  }
}

it('four processes each sending, working and following events: exactly once, no overlapping leases, key order, one order for every reader', async () => {
  const queue = 'multi';
  const ferry = await open(schema.url);
  await ferry.configure(queue, { maxAttempts: 20, backoff: { type: 'fixed', delay: 5 }, lease: '20s' });

  const children = Array.from({ length: PROCESSES }, (_, i) =>
    spawnChild(CHILD, [schema.url, queue, String(i), String(TOTAL / PROCESSES), String(TOTAL)]),
  );
  try {
    for (const c of children) assert.equal(await c.line(), 'ready');
    const started = Date.now();
    for (const c of children) c.send('go');
    for (const c of children) assert.equal(await c.line(), 'sent');
    const sentAt = Date.now();

    for (;;) {
      const stats = await ferry.stats(queue);
      if (stats.completed === TOTAL) break;
      assert.equal(stats.dead, 0);
      // A hang guard only: on a loaded machine the run takes far less.
      if (Date.now() - started > 120_000) assert.fail(`only ${stats.completed} of ${TOTAL} completed in 120 s`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const elapsed = Date.now() - started;
    const sending = sentAt - started;
    let failures = 0;
    const readers: Entry[][] = [];
    for (const c of children) c.send('stop');
    for (const c of children) {
      const report = JSON.parse(await c.line()) as { failed: number; events: Entry[] };
      failures += report.failed;
      readers.push(report.events);
    }
    console.log(
      `# ${TOTAL} messages through ${PROCESSES} processes (each sending, working, reading) in ${elapsed} ms (sends done after ${sending} ms), ${failures} failed attempts retried`,
    );
    assert.ok(failures > 0, 'some attempts failed and were retried');

    const reported = Date.now();
    // Replay the whole log after the fact: what a reader that came late sees.
    const events: FerryEvent[] = [];
    const stream = ferry.events({ queue, after: 0 });
    let completions = 0;
    for await (const e of stream) {
      events.push(e);
      if (e.type === 'completed' && ++completions === TOTAL) break;
    }
    stream.close();
    for (let i = 1; i < events.length; i++) {
      assert.ok((events[i] as FerryEvent).seq > (events[i - 1] as FerryEvent).seq, 'seq increases along the log');
    }

    console.log(
      `# reports in ${reported - started - elapsed} ms, replay of ${events.length} events in ${Date.now() - reported} ms`,
    );
    // Every live reader saw every event once, in the replay's order (a commit that landed below a position a
    // reader had passed would be missing from that reader's list, or out of place in it).
    const replay: Entry[] = events.map((e) => [e.seq, e.type, e.id]);
    readers.forEach((list, i) => {
      assertSameOrder(list, replay, `reader ${i} vs replay`);
      assert.equal(list.length, replay.length, `reader ${i} read ${list.length} events, the log has ${replay.length}`);
      for (let j = i + 1; j < readers.length; j++) assertSameOrder(list, readers[j] as Entry[], `reader ${i} vs ${j}`);
    });

    const leased = new Set<string>();
    const completed = new Map<string, number>();
    for (const e of events) {
      if (e.type === 'active') {
        assert.ok(!leased.has(e.id), `two live leases on ${e.id}`);
        leased.add(e.id);
      } else if (e.type === 'completed' || e.type === 'retrying' || e.type === 'dead') {
        assert.ok(leased.has(e.id), `${e.type} of ${e.id} without a lease`);
        leased.delete(e.id);
        if (e.type === 'completed') completed.set(e.id, (completed.get(e.id) ?? 0) + 1);
      }
    }
    assert.equal(completed.size, TOTAL);
    assert.ok(
      [...completed.values()].every((n) => n === 1),
      'each completed exactly once',
    );
    assert.equal(events.filter((e) => e.type === 'sent').length, TOTAL, 'one sent event per message');

    // Key order and one active per key: read each message's key and sequence number.
    const info = new Map<string, { key: string; n: number }>();
    for (let cursor: string | null = null; ; ) {
      const p = await ferry.list(queue, { limit: 1000, cursor });
      for (const m of p.messages) info.set(m.id, m.payload as { key: string; n: number });
      cursor = p.cursor;
      if (!cursor) break;
    }
    assert.equal(info.size, TOTAL);
    const activeKeys = new Set<string>();
    const lastN = new Map<string, number>();
    for (const e of events) {
      const m = info.get(e.id);
      assert.ok(m, `event of an unknown message ${e.id}`);
      if (e.type === 'active') {
        assert.ok(!activeKeys.has(m.key), `two active messages of key ${m.key}`);
        activeKeys.add(m.key);
        assert.equal(m.n, (lastN.get(m.key) ?? 0) + 1, `key ${m.key} out of order`);
      } else if (e.type === 'retrying') activeKeys.delete(m.key);
      else if (e.type === 'completed') {
        activeKeys.delete(m.key);
        lastN.set(m.key, m.n);
      }
    }
  } finally {
    for (const c of children) if (c.proc.exitCode === null && c.proc.signalCode === null) c.proc.kill('SIGKILL');
    await Promise.all(children.map((c) => (c.proc.exitCode === null ? once(c.proc, 'exit') : null)));
    await ferry.close();
  }
});
