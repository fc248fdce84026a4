/**
 * Two processes' worth of stores on one schema, and what one's commits cost the other's idle consumers: the
 * other process's consumers look only when the committing process's own waiting consumers left work over,
 * and then at once, never at their next poll (these engines put it a minute away). The stores poll the log
 * every 100 ms, as a process does to learn who else listens; reading the log wakes no consumer here.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import pg from 'pg';
import type { Delivery } from '../../src/core/types.ts';
import { systemClock } from '../../src/engine/clock.ts';
import { type CountedFerry, countingClaims } from '../support/counted.ts';
import { testSchema } from '../support/postgres.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) await sleep(10);
}

describe('PostgreSQL: hints between processes', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let a: CountedFerry;
  let b: CountedFerry;
  const stop = new AbortController();
  /** Waiting receives in `from`, each of `max`, collecting the payloads they got. */
  const waiting = (from: CountedFerry, queue: string, n: number, max = 1) => {
    const got: unknown[] = [];
    const done = Array.from({ length: n }, () =>
      from.ferry
        .receive(queue, { max, wait: '60s', signal: stop.signal })
        .then((d) => got.push(...d.map((x) => x.payload))),
    );
    return { got, done };
  };

  before(async () => {
    schema = await testSchema('hints');
    const engine = { pollInterval: 60_000 };
    a = await countingClaims(schema.url, engine, { pollInterval: 100 });
    b = await countingClaims(schema.url, engine, { pollInterval: 100 });
    // Both listen and have polled, so each knows the other listens.
    await sleep(500);
  });

  after(async () => {
    stop.abort();
    await a?.ferry.close();
    await b?.ferry.close();
    await schema?.drop();
  });

  it("another process's idle consumers do not look when this process's own took the message", async () => {
    const theirs = waiting(b, 'covered', 5);
    const ours = a.ferry.receive('covered', { max: 1, wait: '60s', signal: stop.signal });
    await sleep(300);
    const before = b.claims();
    await a.ferry.send('covered', { n: 1 });
    const [delivery] = await ours;
    assert.ok(delivery, 'the sending process took its own message');
    await sleep(500);
    assert.equal(b.claims() - before, 0, 'claims by the other process');
    assert.equal(theirs.got.length, 0);
    // The other process still hears of work this one leaves over, at once.
    await a.ferry.sendBatch('covered', [{ payload: 2 }, { payload: 3 }]);
    await until(() => theirs.got.length === 2);
    assert.equal(theirs.got.length, 2, 'two of the waiting receives in the other process got one each');
    assert.ok(b.claims() - before <= 3, `claims by the other process: ${b.claims() - before}`);
  });

  it('two messages freed by one step reach the other process when this one waits for one', async () => {
    for (const limit of ['concurrency', 'key'] as const) {
      const queue = `freed-${limit}`;
      if (limit === 'concurrency') {
        await a.ferry.configure(queue, { concurrency: 2 });
        await a.ferry.sendBatch(
          queue,
          [1, 2, 3, 4].map((payload) => ({ payload })),
        );
      } else {
        await a.ferry.sendBatch(
          queue,
          [1, 2, 3, 4].map((payload) => ({ payload, key: `k${payload % 2}` })),
        );
      }
      const held = await a.ferry.receive(queue, { max: 2 });
      assert.equal(held.length, 2, limit);
      const ours = waiting(a, queue, 1);
      const theirs = waiting(b, queue, 3);
      await sleep(300);
      // One tick: one step acks both, and frees two messages.
      await Promise.all(held.map((d) => a.ferry.ack(d as Delivery)));
      await until(() => ours.got.length + theirs.got.length === 2);
      assert.equal(ours.got.length + theirs.got.length, 2, `${limit}: ${ours.got} here, ${theirs.got} there`);
    }
  });

  it('a message delayed at its commit and due when another process reads it is claimed there', async () => {
    // C's clock runs a second ahead: the message is due for it as soon as it reads the send.
    const c = await countingClaims(
      schema.url,
      { pollInterval: 60_000, clock: { ...systemClock, now: () => Date.now() + 1000 } },
      { pollInterval: 100 },
    );
    try {
      await sleep(300);
      const theirs = waiting(c, 'delayed', 1);
      await sleep(200);
      await a.ferry.send('delayed', 'later', { delay: '500ms' });
      await until(() => theirs.got.length === 1, 400);
      assert.deepEqual(theirs.got, ['later']);
    } finally {
      await c.ferry.close();
    }
  });

  it("a queue resumed in one process is claimed from in another's waiting consumers at once", async () => {
    await a.ferry.pause('resumed');
    await a.ferry.send('resumed', 'held');
    const theirs = waiting(b, 'resumed', 1);
    await sleep(300);
    assert.deepEqual(theirs.got, [], 'paused');
    await a.ferry.resume('resumed');
    await until(() => theirs.got.length === 1, 3000);
    assert.deepEqual(theirs.got, ['held']);
  });

  it('after its LISTEN connection is cut and back, a process looks for what it missed', async () => {
    // D reads the log only at its start and then once a minute: what it missed, it learns from no poll.
    const d = await countingClaims(`${schema.url}&application_name=hints-d`, { pollInterval: 60_000 });
    try {
      await sleep(300);
      const theirs = waiting(d, 'relisten', 1);
      await sleep(200);
      const channel = `ferry_${createHash('sha1').update(schema.schema).digest('hex').slice(0, 24)}`;
      const admin = new pg.Client({ connectionString: schema.url.replace(/\?.*$/, '') });
      await admin.connect();
      try {
        const cut = await admin.query(
          'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
          [`ferry:${channel} hints-d`],
        );
        assert.equal(cut.rowCount, 1, "D's listener");
      } finally {
        await admin.end();
      }
      await sleep(50);
      // Sent while D does not listen (it reconnects after 250 ms): its hint never reaches D.
      await a.ferry.send('relisten', 'missed');
      await until(() => theirs.got.length === 1, 3000);
      assert.deepEqual(theirs.got, ['missed']);
    } finally {
      await d.ferry.close();
    }
  });
});
