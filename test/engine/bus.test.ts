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
});
