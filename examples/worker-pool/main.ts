/**
 * The producer: queues a batch of welcome e-mails, runs a pool of workers that deliver them, waits for every
 * result and prints a summary.
 *
 *   npx tsx examples/worker-pool/main.ts
 *
 * FERRY_STORE picks the store (default: a SQLite file in a fresh temporary folder); WORKERS the pool size.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MessageFailedError, open } from '../../src/index.ts';
import type { Email } from './mailer.ts';
import { QUEUE, startMailWorkers } from './worker.ts';

const RECIPIENTS = [
  'ada@example.com',
  'grace@example.com',
  'alan@greylist.example',
  'edsger@example.com',
  'barbara@greylist.example',
  'not-an-address',
  'ken@example.com',
  'margaret@busy.example',
  'donald@example.com',
  'frances@greylist.example',
  'john@example.com',
  'radia@example.com',
];

const concurrency = Number(process.env.WORKERS ?? 4);
if (!Number.isInteger(concurrency) || concurrency < 1) throw new Error(`WORKERS must be a positive integer`);

const tempDir = process.env.FERRY_STORE ? null : await mkdtemp(join(tmpdir(), 'ferry-worker-pool-'));
const store = process.env.FERRY_STORE ?? `sqlite:${join(tempDir as string, 'ferry.db')}`;
const ferry = await open(store);
console.log(`store: ${store}`);

// Queue defaults: 4 attempts, short backoffs so the demo finishes in seconds (the default starts at 1 s).
await ferry.configure(QUEUE, { maxAttempts: 4, backoff: { type: 'exponential', delay: '100ms', max: '1s' } });

const started = Date.now();
const sent = await Promise.all(
  RECIPIENTS.map((to) => {
    const email: Email = { to, subject: 'Welcome aboard', body: `Hello ${to.split('@')[0]}, thanks for signing up.` };
    // dedupeId: running the producer twice against the same store does not send anyone two welcomes.
    return ferry.send(QUEUE, email, { dedupeId: `welcome:${to}` });
  }),
);
console.log(`queued ${sent.length} e-mails; starting ${concurrency} workers`);

const workers = startMailWorkers(ferry, concurrency);

type Outcome = { to: string; ok: boolean; attempts: number; detail: string };
const outcomes: Outcome[] = [];
// The workers run in parallel; the producer reads the results in the order it sent the messages.
for (const [i, message] of sent.entries()) {
  const to = RECIPIENTS[i] as string;
  try {
    const { messageId, attempt } = await message.result<{ messageId: string; attempt: number }>({ timeout: '30s' });
    console.log(`✓ ${to} delivered (attempt ${attempt}) ${messageId}`);
    outcomes.push({ to, ok: true, attempts: attempt, detail: messageId });
  } catch (error) {
    if (!(error instanceof MessageFailedError)) throw error;
    const { attempts, error: failure } = error.info;
    console.log(`✗ ${to} dead after ${attempts} attempt(s): ${failure?.message}`);
    outcomes.push({ to, ok: false, attempts, detail: failure?.message ?? '' });
  }
}

await workers.close();
const stats = await ferry.stats(QUEUE);
await ferry.close();
if (tempDir) await rm(tempDir, { recursive: true, force: true });

const delivered = outcomes.filter((o) => o.ok);
const retried = delivered.filter((o) => o.attempts > 1);
const failed = outcomes.filter((o) => !o.ok);
console.log('');
console.log(`summary: ${outcomes.length} e-mails in ${((Date.now() - started) / 1000).toFixed(1)} s`);
console.log(`  delivered  ${delivered.length} (${retried.length} after a retry)`);
console.log(`  dead       ${failed.length}`);
for (const o of failed) console.log(`    ${o.to}: ${o.detail}`);
console.log(`  queue      completed=${stats.completed} dead=${stats.dead} waiting=${stats.waiting}`);
