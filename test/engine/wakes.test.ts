/**
 * Idle consumers and the claims a send costs: a commit wakes as many waiting receives as it made messages
 * deliverable, so a fleet of idle consumers does not answer every send with a claim each (every claim is a
 * statement, on PostgreSQL a transaction). Counted at the store's claim, on the embedded store.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delivery } from '../../src/core/types.ts';
import { countingClaims } from '../support/counted.ts';

const counted = () => countingClaims('memory:', { pollInterval: 60_000 });

const settle = () => new Promise((resolve) => setTimeout(resolve, 20));

describe('waking idle consumers', () => {
  it('one send wakes one of twenty waiting receives, and a batch as many as it holds', async () => {
    const { ferry, claims } = await counted();
    const stop = new AbortController();
    try {
      const got: Delivery[][] = [];
      const receives = Array.from({ length: 20 }, () =>
        ferry.receive('q', { max: 1, wait: '30s', signal: stop.signal }).then((d) => got.push(d)),
      );
      await settle();
      const idle = claims();
      assert.equal(idle, 20, 'each receive looked once before it waited');

      await ferry.send('q', { n: 1 });
      await settle();
      assert.equal(got.length, 1, 'one receive got the message');
      assert.equal(claims() - idle, 1, 'the woken receive claimed it, and no other looked');

      const before = claims();
      await ferry.sendBatch('q', [{ payload: 2 }, { payload: 3 }, { payload: 4 }]);
      await settle();
      assert.equal(got.length, 4, 'three more receives got one each');
      assert.equal(claims() - before, 3, 'claims for a batch of three');
      stop.abort();
      await Promise.all(receives);
      assert.equal(got.flat().length, 4, 'no message was claimed twice or lost');
    } finally {
      stop.abort();
      await ferry.close();
    }
  });

  it('a wake that names no count still reaches every waiting receive, through the full claims', async () => {
    const { ferry } = await counted();
    const stop = new AbortController();
    try {
      await ferry.pause('q');
      await ferry.sendBatch(
        'q',
        Array.from({ length: 10 }, (_, i) => ({ payload: i })),
      );
      const got: Delivery[][] = [];
      const receives = Array.from({ length: 5 }, () =>
        ferry.receive('q', { max: 2, wait: '30s', signal: stop.signal }).then((d) => got.push(d)),
      );
      await settle();
      assert.equal(got.length, 0, 'paused');
      // resume() wakes one receive, as another process's hint does: its claim comes back full and wakes the next.
      await ferry.resume('q');
      await settle();
      assert.equal(got.length, 5, 'every receive was answered');
      assert.equal(got.flat().length, 10, 'the ten messages, two each');
      stop.abort();
      await Promise.all(receives);
    } finally {
      stop.abort();
      await ferry.close();
    }
  });
});
