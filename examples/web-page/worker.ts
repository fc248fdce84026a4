/**
 * The worker: a separate Node process that takes text-analysis jobs from the Ferry server over HTTP and
 * answers each with its result. Run as many as you like, on any machine that can reach the server.
 *
 *   FERRY_URL=http://127.0.0.1:7070 npx tsx examples/web-page/worker.ts
 */
import { connect, type Job, UnrecoverableError } from '../../src/client/index.ts';

export const QUEUE = 'text-stats';

interface Stats {
  words: number;
  sentences: number;
  readingSeconds: number;
  topWords: { word: string; count: number }[];
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The "expensive" part, slowed down on purpose so the page has progress to show. */
async function analyse(job: Job<{ text?: unknown }>): Promise<Stats> {
  const text = job.payload?.text;
  if (typeof text !== 'string' || text.trim() === '') {
    // Retrying cannot fix bad input: the message is dead at once and the page shows this message.
    throw new UnrecoverableError('there is no text to analyse');
  }
  const words = text.toLowerCase().match(/[\p{L}\p{N}']+/gu) ?? [];
  await job.progress(30);
  await sleep(300);
  const counts = new Map<string, number>();
  for (const word of words) if (word.length > 3) counts.set(word, (counts.get(word) ?? 0) + 1);
  const topWords = [...counts]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, 5)
    .map(([word, count]) => ({ word, count }));
  await job.progress(70);
  await sleep(300);
  return {
    words: words.length,
    sentences: text.split(/[.!?]+/).filter((s) => s.trim() !== '').length,
    readingSeconds: Math.ceil((words.length / 230) * 60),
    topWords,
  };
}

const url = process.env.FERRY_URL ?? 'http://127.0.0.1:7070';
const ferry = await connect(url, process.env.FERRY_TOKEN ? { token: process.env.FERRY_TOKEN } : {});
const worker = ferry.work(QUEUE, analyse, {
  concurrency: 2,
  onError: (error) => console.error(`worker: ${(error as Error).message}`),
});
console.log(`worker: taking ${QUEUE} jobs from ${url}`);

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, async () => {
    await worker.close({ timeout: '5s' });
    await ferry.close();
    console.log('worker: stopped');
    process.exit(0);
  });
}
