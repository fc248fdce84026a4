/**
 * The benchmark workloads, each against a fresh Ferry, each checking its counts: a run that handled fewer
 * (or more) messages than it claims throws.
 */
import { performance } from 'node:perf_hooks';
import type { Ferry } from '../src/core/types.ts';

export interface Figure {
  name: string;
  value: number;
  unit: string;
}

const queueName = (label: string) => `bench-${label}-${Math.random().toString(36).slice(2, 8)}`;

function check(condition: boolean, message: string): void {
  if (!condition) throw new Error(`count check failed: ${message}`);
}

/** (a) Sequential awaited single sends. */
export async function sequentialSends(ferry: Ferry, n: number): Promise<Figure> {
  const queue = queueName('seq');
  const t0 = performance.now();
  for (let i = 0; i < n; i++) await ferry.send(queue, { i });
  const ms = performance.now() - t0;
  const stats = await ferry.stats(queue);
  check(stats.waiting === n, `sent ${n}, store has ${stats.waiting} waiting`);
  await ferry.purge(queue);
  return { name: 'send, sequential awaited', value: (n / ms) * 1000, unit: 'msgs/s' };
}

/** (b) Batches of 1,000, awaited one after another. */
export async function batchSends(ferry: Ferry, n: number, size = 1000): Promise<Figure> {
  const queue = queueName('batch');
  const t0 = performance.now();
  for (let b = 0; b < n; b += size) {
    const batch = [];
    for (let i = b; i < Math.min(n, b + size); i++) batch.push({ payload: { i } });
    await ferry.sendBatch(queue, batch);
  }
  const ms = performance.now() - t0;
  const stats = await ferry.stats(queue);
  check(stats.waiting === n, `sent ${n}, store has ${stats.waiting} waiting`);
  await ferry.purge(queue);
  return { name: `sendBatch (${size})`, value: (n / ms) * 1000, unit: 'msgs/s' };
}

/** (c) Processing n pre-sent no-op messages with work() at the given concurrency; timed from work() to the last ack committed. */
export async function processing(
  ferry: Ferry,
  n: number,
  concurrency = 50,
  options: { payload?: (i: number) => unknown; keys?: number; label?: string; prefetch?: number } = {},
): Promise<Figure> {
  const queue = queueName('proc');
  for (let b = 0; b < n; b += 1000) {
    const batch = [];
    for (let i = b; i < Math.min(n, b + 1000); i++) {
      batch.push({
        payload: options.payload ? options.payload(i) : { i },
        ...(options.keys ? { key: `k${i % options.keys}` } : {}),
      });
    }
    await ferry.sendBatch(queue, batch);
  }
  const seen = new Uint8Array(n);
  let handled = 0;
  let finish: () => void = () => {};
  const allHandled = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const t0 = performance.now();
  const worker = ferry.work<{ i: number } & Record<string, unknown>>(
    queue,
    (job) => {
      const i = options.payload ? handled : job.payload.i;
      if (!options.payload) seen[i] = (seen[i] ?? 0) + 1;
      if (++handled === n) finish();
    },
    { concurrency, ...(options.prefetch === undefined ? {} : { prefetch: options.prefetch }) },
  );
  await allHandled;
  // close() returns once every ack in hand is committed: the clock stops with all n completed in the store.
  await worker.close();
  const ms = performance.now() - t0;
  const stats = await ferry.stats(queue);
  check(handled === n, `handler ran ${handled} times for ${n} messages`);
  if (!options.payload)
    check(
      seen.every((c) => c === 1),
      'a message was handled other than exactly once',
    );
  check(stats.completed === n && stats.waiting + stats.active + stats.dead === 0, JSON.stringify(stats));
  await ferry.purge(queue);
  return {
    name: options.label ?? `process ${n} no-op, concurrency ${concurrency}`,
    value: (n / ms) * 1000,
    unit: 'msgs/s',
  };
}

/** (d) send → handler start latency at a steady low rate (one send every `gapMs`). */
export async function latency(ferry: Ferry, n: number, gapMs = 2): Promise<Figure[]> {
  const queue = queueName('lat');
  const samples: number[] = [];
  const started = new Map<number, number>();
  const worker = ferry.work<{ i: number; t: number }>(
    queue,
    (job) => {
      samples.push(performance.now() - job.payload.t);
      started.set(job.payload.i, 1);
    },
    { concurrency: 50 },
  );
  await new Promise((resolve) => setTimeout(resolve, 200));
  for (let i = 0; i < n; i++) {
    await ferry.send(queue, { i, t: performance.now() });
    await new Promise((resolve) => setTimeout(resolve, gapMs));
  }
  for (let w = 0; w < 200 && started.size < n; w++) await new Promise((resolve) => setTimeout(resolve, 10));
  await worker.close();
  check(samples.length === n && started.size === n, `${samples.length} handler starts for ${n} sends`);
  samples.sort((a, b) => a - b);
  const pct = (p: number) => samples[Math.min(n - 1, Math.ceil((p / 100) * n) - 1)] as number;
  await ferry.purge(queue);
  return [
    { name: 'send→start p50', value: pct(50), unit: 'ms' },
    { name: 'send→start p95', value: pct(95), unit: 'ms' },
    { name: 'send→start p99', value: pct(99), unit: 'ms' },
  ];
}
