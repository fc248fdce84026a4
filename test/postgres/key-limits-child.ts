/**
 * A child process of key-limits.test.ts: works the given queues until told to stop.
 *
 *   key-limits-child.ts URL QUEUE…
 *
 * Each queue gets a worker of concurrency 8 whose handler takes 2–10 ms. Prints `ready` once the workers
 * run; on `stop` (stdin) closes them and the ferry, then prints `stopped`.
 */
import { createInterface } from 'node:readline';
import { open } from '../../src/index.ts';

const [url, ...queues] = process.argv.slice(2) as [string, ...string[]];
const ferry = await open(url);
const workers = queues.map((queue) =>
  ferry.work(queue, () => new Promise((resolve) => setTimeout(resolve, 2 + Math.random() * 8)), {
    concurrency: 8,
  }),
);

const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line !== 'stop') return;
  void (async () => {
    await Promise.all(workers.map((w) => w.close()));
    await ferry.close();
    process.stdout.write('stopped\n', () => process.exit(0));
  })();
});
// The test ended (or died) without a stop: do not linger as an orphan holding connections.
lines.on('close', () => process.exit(1));
process.stdout.write('ready\n');
