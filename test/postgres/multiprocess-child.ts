/**
 * A child process of multiprocess.test.ts: `producer INDEX COUNT` sends COUNT messages in batches, keyed
 * `pINDEX-kN` with a per-key sequence number; `worker SECONDS` processes the queue, failing one attempt in
 * eight at random, until told to stop on stdin.
 */
import { open } from '../../src/index.ts';

const [url, queue, role, arg, arg2] = process.argv.slice(2) as [string, string, string, string, string];
const ferry = await open(url);

if (role === 'producer') {
  const index = Number(arg);
  const count = Number(arg2);
  const perKey = new Map<string, number>();
  for (let sent = 0; sent < count; ) {
    const batch = Array.from({ length: Math.min(250, count - sent) }, (_, i) => {
      const key = `p${index}-k${(sent + i) % 50}`;
      const n = (perKey.get(key) ?? 0) + 1;
      perKey.set(key, n);
      return { payload: { key, n }, key };
    });
    await ferry.sendBatch(queue, batch);
    sent += batch.length;
  }
  await ferry.close();
  process.stdout.write('done\n');
} else {
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
    { concurrency: 32, onError: () => {} },
  );
  process.stdin.once('data', async () => {
    await worker.close();
    await ferry.close();
    process.stdout.write(`${JSON.stringify({ failed })}\n`);
    process.exit(0);
  });
  process.stdout.write('ready\n');
}
