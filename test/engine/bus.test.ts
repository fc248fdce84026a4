/** The Bus's rule for a listener that throws: reported as a warning; delivery to the others goes on. */
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
});
