/**
 * Two processes' worth of stores on one schema, and what one's commit costs the other's idle consumers: the
 * other process's consumers look only when the committing process's own waiting consumers left work over,
 * and then they are woken at once (not at their next poll, which these engines put a minute away).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Delivery } from '../../src/core/types.ts';
import type { Engine } from '../../src/engine/engine.ts';
import { countingClaims } from '../support/counted.ts';
import { testSchema } from '../support/postgres.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PostgreSQL: hints between processes', () => {
  let schema: Awaited<ReturnType<typeof testSchema>>;
  let a: { ferry: Engine; claims: () => number };
  let b: { ferry: Engine; claims: () => number };
  const stop = new AbortController();

  before(async () => {
    schema = await testSchema('hints');
    a = await countingClaims(schema.url, { pollInterval: 60_000 });
    b = await countingClaims(schema.url, { pollInterval: 60_000 });
    // Each process polls the log once on its own schedule; by then both listen and know of each other.
    await sleep(1500);
  });

  after(async () => {
    stop.abort();
    await a?.ferry.close();
    await b?.ferry.close();
    await schema?.drop();
  });

  it("another process's idle consumers do not look when this process's own took the message", async () => {
    const got: Delivery[][] = [];
    const theirs = Array.from({ length: 5 }, () =>
      b.ferry.receive('covered', { max: 1, wait: '60s', signal: stop.signal }).then((d) => got.push(d)),
    );
    const ours = a.ferry.receive('covered', { max: 1, wait: '60s', signal: stop.signal });
    await sleep(300);
    const before = b.claims();
    await a.ferry.send('covered', { n: 1 });
    const [delivery] = await ours;
    assert.ok(delivery, 'the sending process took its own message');
    await sleep(500);
    assert.equal(b.claims() - before, 0, 'claims by the other process');
    assert.equal(got.length, 0);
    // The other process still hears of work this one leaves over, at once.
    await a.ferry.sendBatch('covered', [{ payload: 2 }, { payload: 3 }]);
    const deadline = Date.now() + 5000;
    while (got.length < 2 && Date.now() < deadline) await sleep(10);
    assert.equal(got.length, 2, 'two of the waiting receives in the other process got one each');
    assert.ok(b.claims() - before <= 3, `claims by the other process: ${b.claims() - before}`);
    stop.abort();
    await Promise.all(theirs);
  });
});
