/**
 * A child process of multiprocess.test.ts; it sends, works and follows events at once:
 *
 *   multiprocess-child.ts URL QUEUE INDEX COUNT TOTAL
 *
 * It follows `events({ queue, after: 0 })` and runs a worker (failing one attempt in eight at random), then
 * prints `ready`. On `go` (stdin) it sends COUNT messages, seven eighths in batches keyed `cINDEX-bN`, the rest as single
 * sends from eight lanes at once, each lane awaiting its own key `cINDEX-sLANE` (so each key's send order is
 * well defined), each payload `{ key, n }` with n counting per key from 1; then prints `sent`. On `stop` it
 * closes the worker, reads events until it has seen TOTAL completions and prints
 * `{ failed, events: [[seq, type, id], …] }` as one line.
 */
import { createInterface } from 'node:readline';
import type { FerryEvent } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';

const [url, queue, indexText, countText, totalText] = process.argv.slice(2) as [string, string, string, string, string];
const index = Number(indexText);
const count = Number(countText);
const total = Number(totalText);
const LANES = 8;
const BATCH_KEYS = 25;

const ferry = await open(url);

const seen: [number, string, string][] = [];
let completed = 0;
let readAll: () => void = () => {};
const allRead = new Promise<void>((resolve) => (readAll = resolve));
const stream = ferry.events({ queue, after: 0 });
const reading = (async () => {
  for await (const e of stream as AsyncIterable<FerryEvent>) {
    seen.push([e.seq, e.type, e.id]);
    if (e.type === 'completed' && ++completed === total) break;
  }
  readAll();
})();

let failed = 0;
const worker = ferry.work(
  queue,
  async () => {
    if (Math.random() < 0.125) {
      failed++;
      throw new Error('random failure');
    }
    return 'ok';
  },
  { concurrency: 16, onError: () => {} },
);

async function sendAll(): Promise<void> {
  const batched = Math.floor((count * 7) / 8);
  const perKey = new Map<string, number>();
  const next = (key: string) => {
    const n = (perKey.get(key) ?? 0) + 1;
    perKey.set(key, n);
    return { key, n };
  };
  const batches = (async () => {
    for (let sent = 0; sent < batched; ) {
      const batch = Array.from({ length: Math.min(50, batched - sent) }, (_, i) => {
        const payload = next(`c${index}-b${(sent + i) % BATCH_KEYS}`);
        return { payload, key: payload.key };
      });
      await ferry.sendBatch(queue, batch);
      sent += batch.length;
    }
  })();
  const singles = count - batched;
  const lanes = Array.from({ length: LANES }, async (_, lane) => {
    for (let i = lane; i < singles; i += LANES) {
      const payload = next(`c${index}-s${lane}`);
      await ferry.send(queue, payload, { key: payload.key });
    }
  });
  await Promise.all([batches, ...lanes]);
}

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line === 'go') {
    sendAll().then(
      () => process.stdout.write('sent\n'),
      (error: unknown) => {
        process.stderr.write(`child ${index}: ${(error as Error)?.stack ?? error}\n`);
        process.exit(1);
      },
    );
  } else if (line === 'stop') {
    void (async () => {
      await worker.close();
      await allRead;
      stream.close();
      await reading;
      await ferry.close();
      // Exit only once the pipe has taken the whole line: the list runs to megabytes.
      process.stdout.write(`${JSON.stringify({ failed, events: seen })}\n`, () => process.exit(0));
    })();
  }
});
// The test ended (or died) without a stop: do not linger as an orphan holding connections.
lines.on('close', () => process.exit(1));
process.stdout.write('ready\n');
