/**
 * What the peer drivers share: a handler-call ledger that proves exactly-once, nearest-rank percentiles,
 * the latency drive, and the one JSON line a driver prints for the runner. The drivers are JavaScript so
 * the project's type check never needs this folder's node_modules; they run with `node --import tsx`
 * (sizes come from sizes.ts, shared with the TypeScript children).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { sizes } from './sizes.ts';

export { ensureDatabase, PG_URL, REDIS, sizes } from './sizes.ts';
export { performance, sleep };

export function log(...parts) {
  process.stderr.write(`  [${process.argv[1]?.split('/').pop()}] ${parts.join(' ')}\n`);
}

export function check(condition, message) {
  if (!condition) throw new Error(`count check failed: ${message}`);
}

export const perSecond = (n, ms) => (n / ms) * 1000;

/** Counts handler calls per job index; `verify` fails unless every index 0..n-1 ran exactly once. */
export class Ledger {
  constructor(n) {
    this.n = n;
    this.hits = new Uint16Array(n);
    this.calls = 0;
    this.stray = 0;
  }
  hit(i) {
    this.calls++;
    if (Number.isInteger(i) && i >= 0 && i < this.n) this.hits[i]++;
    else this.stray++;
  }
  verify(what) {
    let missing = 0;
    let repeated = 0;
    for (const h of this.hits) {
      if (h === 0) missing++;
      else if (h > 1) repeated++;
    }
    check(
      this.stray === 0 && missing === 0 && repeated === 0 && this.calls === this.n,
      `${what}: ${this.calls} handler calls for ${this.n} jobs (${missing} never ran, ${repeated} ran twice or more, ${this.stray} unknown)`,
    );
  }
}

/** Polls `probe` (async) every `everyMs` until true; the time it first answered true. */
export async function until(probe, what, { everyMs = 5, timeoutMs = 300_000 } = {}) {
  const t0 = performance.now();
  for (;;) {
    if (await probe()) return performance.now();
    if (performance.now() - t0 > timeoutMs) throw new Error(`gave up after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** p50/p95/p99 by nearest rank, the same definition as bench/workloads.ts. */
export function percentiles(samples) {
  const s = Float64Array.from(samples).sort();
  const at = (p) => s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)];
  return { p50: at(50), p95: at(95), p99: at(99) };
}

/**
 * The latency drive shared by every peer: `send(i, t)` awaited, then a pause of `gapMs`, so sends are at
 * least that far apart (bench/workloads.ts does the same for Ferry).
 */
export async function drive(send, n = sizes.latency, gapMs = sizes.gapMs) {
  for (let i = 0; i < n; i++) {
    await send(i, performance.now());
    await sleep(gapMs);
  }
}

/**
 * Runs a driver's main and prints its one result line: `{"system", "figures": {key: value}}`. Keys:
 * a, b, c (msgs/s), d50, d95, d99 (ms), or the raw limits' own. Any failure exits 1.
 */
export function runDriver(system, main) {
  main().then(
    (figures) => {
      process.stdout.write(`${JSON.stringify({ system, figures })}\n`);
      process.exit(0);
    },
    (error) => {
      process.stderr.write(`${system}: ${error?.stack ?? error}\n`);
      process.exit(1);
    },
  );
}
