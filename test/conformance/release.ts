/** Conformance: release hands a delivery back without spending an attempt. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LeaseLostError } from '../../src/core/errors.ts';
import { type Ctx, expectError, mustGet, qname, receiveOne } from './helpers.ts';

export function releaseTests(ctx: Ctx): void {
  describe('release', () => {
    it('puts the message back waiting at once; the attempt does not count, even with maxAttempts 1', async () => {
      const { ferry } = ctx;
      const q = qname();
      const sent = await ferry.send(q, 'x', { maxAttempts: 1 });
      for (let i = 0; i < 3; i++) {
        const d = await receiveOne(ferry, q, '30s', 0);
        assert.equal(d.attempt, 1, 'every delivery is still attempt 1');
        assert.deepEqual(await ferry.release(d), { state: 'waiting' });
        const info = await mustGet(ferry, sent.id);
        assert.equal(info.state, 'waiting');
        assert.equal(info.attempts, 0);
        await expectError(() => ferry.ack(d), LeaseLostError, 'the released receipt is stale');
      }
      const d = await receiveOne(ferry, q, '30s', 0);
      await ferry.ack(d, 'done');
      assert.equal((await mustGet(ferry, sent.id)).state, 'completed');
      await expectError(() => ferry.release(d), LeaseLostError, 'release after ack');
    });

    it('a release after a cancel was requested makes the message cancelled', async () => {
      const { ferry } = ctx;
      const q = qname();
      const sent = await ferry.send(q, 'x');
      const d = await receiveOne(ferry, q, '30s', 0);
      await ferry.cancel(sent.id);
      assert.deepEqual(await ferry.release(d), { state: 'cancelled' });
      assert.equal((await mustGet(ferry, sent.id)).state, 'cancelled');
    });
  });
}
