/**
 * work()'s prefetch: without the option, the loop holds about two round trips of work, so quick handlers
 * share large claims and slow ones hold no more than their concurrency; with it, exactly what was asked.
 * Driven through a host whose receive answers after a round trip, so what each receive asked for is seen.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Delivery, WorkOptions } from '../../src/core/types.ts';
import { type WorkerHost, WorkerLoop } from '../../src/engine/worker.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Runs `total` messages through a worker; answers the `max` of every receive, in order. */
async function run(total: number, handlerMs: number, options: WorkOptions, roundTrip = 2): Promise<number[]> {
  const asked: number[] = [];
  let next = 0;
  let acked = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const host: WorkerHost = {
    async receive(queue, { max, signal }) {
      asked.push(max);
      await sleep(roundTrip);
      if (signal?.aborted) return [];
      const deliveries: Delivery[] = [];
      for (; deliveries.length < max && next < total; next++) {
        deliveries.push({
          id: `m${next}`,
          queue,
          payload: next,
          attempt: 1,
          receipt: `r${next}`,
          priority: 0,
          key: null,
          headers: {},
          sentAt: new Date().toISOString(),
          leaseUntil: new Date(Date.now() + 30_000).toISOString(),
          deadline: null,
        });
      }
      if (deliveries.length === 0) await sleep(20);
      return deliveries;
    },
    async ack() {
      if (++acked === total) finish();
    },
    nack: async () => ({}),
    extend: async () => ({ leaseUntil: new Date(Date.now() + 30_000).toISOString() }),
    progress: async () => {},
    release: async () => ({}),
    children: async () => [],
    now: () => Date.now(),
    idleWait: 20,
  };
  const worker = new WorkerLoop(host, 'q', handlerMs === 0 ? () => null : () => sleep(handlerMs), options);
  await done;
  await worker.close();
  return asked;
}

describe('work() prefetch', () => {
  it('quick handlers: claims grow past concurrency + concurrency, never past twenty-one times the concurrency', async () => {
    const asked = await run(5000, 0, { concurrency: 10 });
    assert.ok(Math.max(...asked) > 20, `largest receive asked for ${Math.max(...asked)}`);
    assert.ok(Math.max(...asked) <= 210, `largest receive asked for ${Math.max(...asked)}`);
  });

  it('slow handlers: the worker holds no more than twice its concurrency', async () => {
    const asked = await run(20, 200, { concurrency: 5 });
    assert.ok(Math.max(...asked) <= 10, `receives asked for ${asked.join(', ')}`);
  });

  it('an explicit prefetch is kept as given (0: only free slots)', async () => {
    const asked = await run(2000, 0, { concurrency: 10, prefetch: 0 });
    assert.ok(Math.max(...asked) <= 10, `largest receive asked for ${Math.max(...asked)}`);
  });
});
