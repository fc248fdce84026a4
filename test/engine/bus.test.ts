/**
 * The Bus's rules: a listener that throws is reported as a warning and delivery to the others goes on; a commit
 * wakes as many waiting consumers as it made messages deliverable, not every consumer.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import type { FerryEvent } from '../../src/core/types.ts';
import { Bus } from '../../src/engine/bus.ts';
import { systemClock } from '../../src/engine/clock.ts';

const event = (seq: number, type: FerryEvent['type'], id = `m${seq}`): FerryEvent => ({
  seq,
  type,
  queue: 'q',
  id,
  at: new Date(0).toISOString(),
});

describe('Bus', () => {
  it('a throwing listener is reported and does not stop the others or the publisher', async () => {
    const bus = new Bus(systemClock);
    const seen: number[] = [];
    const finals: string[] = [];
    bus.subscribe(() => {
      throw new Error('listener bug');
    });
    bus.subscribe((e) => seen.push(e.seq));
    bus.onFinal('m2', () => {
      throw new Error('waiter bug');
    });
    bus.onFinal('m2', (e) => finals.push(e.type));
    const warned = once(process, 'warning');
    assert.doesNotThrow(() => bus.publish([event(1, 'active'), event(2, 'completed')]));
    assert.deepEqual(seen, [1, 2], 'every event reached the listener after the throwing one');
    assert.deepEqual(finals, ['completed']);
    const [warning] = (await warned) as [Error & { code?: string }];
    assert.equal(warning.code, 'FERRY_LISTENER_ERROR');
    assert.match(warning.message, /listener bug|waiter bug/);
  });

  it('a claim in flight learns of the wakes of its queue meanwhile, whatever wakes it, and of no other queue', () => {
    const bus = new Bus(systemClock);
    const quiet = bus.watch('q');
    bus.wake('other');
    assert.equal(quiet(), false, 'another queue woke');
    const sent = bus.watch('q');
    bus.wakeFor([event(1, 'sent')]);
    assert.equal(sent(), true, 'a send woke it');
    const finished = bus.watch('q');
    bus.wakeFor([event(2, 'completed')]);
    assert.equal(finished(), true, 'a finished message may free a key or a slot');
    const hinted = bus.watch('q');
    bus.wakeQueues(null);
    assert.equal(hinted(), true, 'another process hinted at every queue');
    const after = bus.watch('q');
    assert.equal(after(), false, 'wakes before the claim started do not count');
  });

  it('wakes the oldest waiting consumers until they asked for as many messages as became deliverable', async () => {
    const bus = new Bus(systemClock);
    const woken: string[] = [];
    const wait = (name: string, want: number, queue = 'q') =>
      void bus.waitForQueue(queue, 60_000, undefined, want).then(() => woken.push(name));
    const settle = () => new Promise((resolve) => setImmediate(resolve));
    wait('a', 1);
    wait('b', 10);
    wait('c', 1);
    wait('d', 1);
    wait('other', 1, 'other');
    bus.wakeFor([event(1, 'sent'), event(2, 'sent')]);
    await settle();
    assert.deepEqual(woken, ['a', 'b'], 'two messages: a takes one, b may take the other');
    bus.wakeFor([event(3, 'completed')]);
    await settle();
    assert.deepEqual(woken, ['a', 'b', 'c'], 'a finished message may free a key or a slot: one consumer looks');
    bus.wakeQueues(['q']);
    await settle();
    assert.deepEqual(woken, ['a', 'b', 'c', 'd'], 'another process named the queue: one consumer looks');
    bus.wakeAll();
    await settle();
    assert.deepEqual(woken, ['a', 'b', 'c', 'd', 'other']);
  });
});
