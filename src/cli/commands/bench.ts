/**
 * `ferry bench`: a quick measurement of this machine and store: send throughput, processing throughput, and
 * the latency from send to a worker holding the message, with the counts checked at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import type { Ferry } from '../../core/types.ts';
import { action, parseIntOption, withConnection, withFerry } from '../context.ts';
import { printJson, println, table } from '../output.ts';

interface BenchFlags {
  store?: string;
  server?: string;
  token?: string;
  messages: string;
  concurrency: string;
  payloadBytes: string;
  json?: boolean;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  const index = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
  return Math.round((sorted[Math.max(0, index)] as number) * 100) / 100;
}

/** Runs `count` calls of `fn`, `inFlight` at a time. */
async function pool(count: number, inFlight: number, fn: (i: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(inFlight, count) }, async () => {
    while (next < count) await fn(next++);
  });
  await Promise.all(lanes);
}

async function run(ferry: Ferry, n: number, concurrency: number, payloadBytes: number) {
  const queue = `bench-${Date.now().toString(36)}`;
  const filler = 'x'.repeat(payloadBytes);

  // 1. Sends, one call each, `concurrency` in flight, as independent producers would.
  let t = performance.now();
  await pool(n, concurrency, async (i) => {
    await ferry.send(queue, { i, filler });
  });
  const sendSeconds = (performance.now() - t) / 1000;

  // 2. Processing: a worker drains the queue; each message must be seen exactly once.
  const seen = new Set<number>();
  let duplicates = 0;
  let drained: () => void = () => {};
  const allSeen = new Promise<void>((resolve) => {
    drained = resolve;
  });
  t = performance.now();
  let worker = ferry.work<{ i: number }>(
    queue,
    (job) => {
      if (seen.has(job.payload.i)) duplicates++;
      seen.add(job.payload.i);
      if (seen.size === n) drained();
      return null;
    },
    { concurrency },
  );
  await allSeen;
  await worker.close();
  const workSeconds = (performance.now() - t) / 1000;

  // 3. Latency: one message at a time, from before send() to the handler holding it.
  const samples = Math.min(n, 200);
  const latencies: number[] = [];
  const sentAt = new Map<number, number>();
  let got: () => void = () => {};
  worker = ferry.work<{ i: number; filler: string }>(
    queue,
    (job) => {
      const start = sentAt.get(job.payload.i);
      if (start !== undefined) latencies.push(performance.now() - start);
      got();
      return null;
    },
    { concurrency: 1 },
  );
  for (let i = 0; i < samples; i++) {
    const arrived = new Promise<void>((resolve) => {
      got = resolve;
    });
    sentAt.set(n + i, performance.now());
    await ferry.send(queue, { i: n + i, filler });
    await arrived;
  }
  await worker.close();

  const stats = await ferry.stats(queue);
  await ferry.purge(queue, { state: 'completed' });
  latencies.sort((a, b) => a - b);
  const ok = stats.completed === n + samples && duplicates === 0 && seen.size === n;
  return {
    queue,
    messages: n,
    concurrency,
    payloadBytes,
    send: { perSecond: Math.round(n / sendSeconds), seconds: Math.round(sendSeconds * 1000) / 1000 },
    process: { perSecond: Math.round(n / workSeconds), seconds: Math.round(workSeconds * 1000) / 1000 },
    latencyMs: {
      samples: latencies.length,
      p50: percentile(latencies, 50),
      p95: percentile(latencies, 95),
      p99: percentile(latencies, 99),
      max: percentile(latencies, 100),
    },
    check: { ok, completed: stats.completed, expected: n + samples, duplicates },
  };
}

export const benchCommand = withConnection(
  new Command('bench')
    .description(
      'measure send and processing throughput and send-to-worker latency on this machine ' +
        '(default: a temporary SQLite file, removed afterwards)',
    )
    .option('-n, --messages <n>', 'messages per phase', '2000')
    .option('-c, --concurrency <n>', 'sends in flight, and worker concurrency', '16')
    .option('--payload-bytes <n>', 'size of each payload’s filler', '100'),
).action(
  action(async (flags: BenchFlags) => {
    const n = parseIntOption(flags.messages, '--messages', 1);
    const concurrency = parseIntOption(flags.concurrency, '--concurrency', 1);
    const payloadBytes = parseIntOption(flags.payloadBytes, '--payload-bytes');
    let temp: string | null = null;
    const target = { ...flags };
    if (!flags.store && !flags.server) {
      temp = mkdtempSync(join(tmpdir(), 'ferry-bench-'));
      target.store = `sqlite:${join(temp, 'bench.db')}`;
    }
    try {
      const report = await withFerry({ ...target, create: true }, (ferry) => run(ferry, n, concurrency, payloadBytes));
      const where = target.server ?? target.store;
      if (flags.json) printJson({ target: where, ...report });
      else {
        println(`bench on ${where}: ${n} messages, concurrency ${concurrency}, ${payloadBytes}-byte payloads`);
        println(
          table(
            ['phase', 'msg/s', 'seconds'],
            [
              ['send', report.send.perSecond, report.send.seconds],
              ['process', report.process.perSecond, report.process.seconds],
            ],
          ),
        );
        const l = report.latencyMs;
        println(
          `latency send→worker (${l.samples} one at a time): p50 ${l.p50}ms  p95 ${l.p95}ms  p99 ${l.p99}ms  max ${l.max}ms`,
        );
        println(
          report.check.ok
            ? `check: ok (${report.check.completed} completed, no duplicates)`
            : `check: FAILED (${report.check.completed} completed of ${report.check.expected}, ${report.check.duplicates} duplicates)`,
        );
      }
      if (!report.check.ok) process.exitCode = 1;
    } finally {
      if (temp) rmSync(temp, { recursive: true, force: true });
    }
  }),
);
