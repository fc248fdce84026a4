/**
 * Regenerates docs/dashboard.png: a server over memory:, a few queues with traffic for ~40 s (some failures),
 * then a screenshot of the overview. Run: `npx tsx test/dashboard/screenshot.ts [light|dark]`.
 */
import { fileURLToPath } from 'node:url';
import { UnrecoverableError } from '../../src/core/errors.ts';
import { dashboard } from '../../src/dashboard/index.ts';
import { open } from '../../src/index.ts';
import { startServer } from '../../src/server/index.ts';
import { launchBrowser } from '../support/browser.ts';

const scheme = process.argv[2] === 'dark' ? 'dark' : 'light';
const out = fileURLToPath(new URL(`../../docs/dashboard${scheme === 'dark' ? '-dark' : ''}.png`, import.meta.url));
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const ferry = await open('memory:');
const server = await startServer({ ferry, port: 0, plugins: [dashboard], logger: false });
const browser = await launchBrowser();
const page = await browser.newPage({ viewport: { width: 1280, height: 820 }, colorScheme: scheme });

const workers = [
  ferry.work(
    'emails',
    async () => {
      await sleep(20 + Math.random() * 60);
      if (Math.random() < 0.08) throw new Error('smtp: 451 try again later');
      return { delivered: true };
    },
    { concurrency: 4 },
  ),
  ferry.work(
    'thumbnails',
    async (job) => {
      await sleep(80 + Math.random() * 120);
      if ((job.payload as { n: number }).n % 17 === 0) throw new UnrecoverableError('unsupported image format');
      return { width: 320 };
    },
    { concurrency: 2 },
  ),
];
await ferry.send('reports', { month: '2026-10' }, { delay: '1h' });
for (let tick = 0; tick < 45; tick++) {
  // Opened mid-way: the first live event makes the page draw the minutes before it from the event log.
  if (tick === 25) await page.goto(`${server.url}/`);
  const wave = Math.round(6 + 5 * Math.sin(tick / 5));
  for (let i = 0; i < wave; i++)
    await ferry.send(
      'emails',
      { to: `user${tick * 20 + i}@example.com` },
      { maxAttempts: 2, backoff: { type: 'fixed', delay: '2s' } },
    );
  for (let i = 0; i < wave / 2; i++)
    await ferry.send('thumbnails', { n: tick * 10 + i, url: `https://example.com/${tick}-${i}.jpg` });
  await sleep(1000);
}
await ferry.pause('thumbnails');
for (let i = 0; i < 7; i++) await ferry.send('thumbnails', { n: 1000 + i });
await sleep(1500);
await page.screenshot({ path: out });
await Promise.all(workers.map((w) => w.close()));
await browser.close();
await server.close();
console.log(`wrote ${out}`);
