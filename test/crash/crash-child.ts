/**
 * The process that gets killed. Run as
 * `node --import tsx test/crash/crash-child.ts <db file> <journal file> [sent:N | acked:N]`.
 *
 * Opens `sqlite:<db file>` (synchronous=FULL, the default) and works under load until it is SIGKILLed:
 * producers `send` and `sendBatch` random payloads into two queues; `receive` + `ack` consumers drain one,
 * a `work()` worker drains the other. Every call is journaled only after its promise resolved, with a
 * synchronous O_APPEND write, so the journal is a subset of what Ferry answered when the kill lands:
 *
 *   ready                          the store is open and the load runs
 *   sent <queue> <id> <marker>     a send (or one message of a sendBatch) was answered
 *   got <id> <attempt> <marker>    a delivery was handed out (receive resolved, or a handler started)
 *   acked <id> <by> <marker>       an ack with result { by, m: marker } was answered
 *   lost <id>                      an ack was refused with lease_lost (the lease ran out under load)
 *
 * `marker` is a hash of the payload's JSON, so the checker can tell an intact payload from a damaged one.
 *
 * A kill from outside lands anywhere, so it rarely falls in the few microseconds between a call's answer and
 * its write reaching the kernel. With a third argument `sent:N` (or `acked:N`) the child SIGKILLs itself right
 * after journaling its N-th answered send (or ack): nothing runs in between, so an answer given before the
 * write is caught.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, openSync, writeSync } from 'node:fs';
import type { Delivery, Ferry } from '../../src/index.ts';
import { LeaseLostError, open } from '../../src/index.ts';
import { ACK_QUEUE, CHILD_LEASE, marker, WORK_QUEUE } from './journal.ts';

const [dbFile, journalFile, killAt = ''] = process.argv.slice(2);
const [, selfKillKind = '', selfKillN = '0'] = /^(sent|acked):(\d+)$/.exec(killAt) ?? [];
let selfKillCountdown = Number(selfKillN);
if (!dbFile || !journalFile || (killAt !== '' && selfKillCountdown === 0)) {
  console.error('usage: crash-child.ts <db file> <journal file> [sent:N | acked:N]');
  process.exit(2);
}

// The parent kills within a second of `ready`; if it is gone (its test timed out, say), do not run forever.
setTimeout(() => {
  console.error('crash child: not killed within 30 s, exiting');
  process.exit(3);
}, 30_000);

const journalFd = openSync(journalFile, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o644);
function journal(line: string): void {
  writeSync(journalFd, `${line}\n`);
  if (selfKillCountdown > 0 && line.startsWith(`${selfKillKind} `) && --selfKillCountdown === 0) {
    process.kill(process.pid, 'SIGKILL');
  }
}

const KEYS = ['k0', 'k1', 'k2', 'k3', 'k4'];
let counter = 0;

/** A random JSON payload: mostly small, some nested and unicode, a few large (to span many WAL frames). */
function randomPayload(producer: number): unknown {
  const n = counter++;
  const roll = Math.random();
  const payload: Record<string, unknown> = {
    p: producer,
    n,
    r: randomBytes(1 + Math.floor(Math.random() * 24)).toString('hex'),
  };
  if (roll < 0.2) payload.text = 'Fähre ⛴ 渡し船 ' + randomBytes(8).toString('base64');
  if (roll > 0.7)
    payload.nested = {
      list: Array.from({ length: Math.floor(Math.random() * 20) }, (_, i) => i * n),
      ok: roll > 0.85,
      none: null,
    };
  if (roll > 0.985) payload.blob = randomBytes(4_000 + Math.floor(Math.random() * 36_000)).toString('base64');
  return payload;
}

function randomOptions(): { key?: string; priority: number; maxAttempts: number } {
  const options: { key?: string; priority: number; maxAttempts: number } = {
    priority: Math.floor(Math.random() * 4),
    maxAttempts: 50,
  };
  if (Math.random() < 0.15) options.key = KEYS[Math.floor(Math.random() * KEYS.length)] as string;
  return options;
}

async function producer(ferry: Ferry, index: number): Promise<never> {
  for (let i = 0; ; i++) {
    const queue = Math.random() < 0.5 ? ACK_QUEUE : WORK_QUEUE;
    if (i % 6 === 5) {
      const payloads = Array.from({ length: 2 + Math.floor(Math.random() * 24) }, () => randomPayload(index));
      const sents = await ferry.sendBatch(
        queue,
        payloads.map((payload) => ({ payload, ...randomOptions() })),
      );
      for (const [j, s] of sents.entries()) journal(`sent ${queue} ${s.id} ${marker(payloads[j])}`);
    } else {
      const payload = randomPayload(index);
      const s = await ferry.send(queue, payload, randomOptions());
      journal(`sent ${queue} ${s.id} ${marker(payload)}`);
    }
  }
}

async function ackOne(ferry: Ferry, d: Delivery): Promise<void> {
  const m = marker(d.payload);
  // Spread the acks over a few turns so some share a group commit with sends and claims, some do not.
  if (Math.random() < 0.5) await new Promise((resolve) => setImmediate(resolve));
  try {
    await ferry.ack(d, { by: 'recv', m });
    journal(`acked ${d.id} recv ${m}`);
  } catch (error) {
    if (!(error instanceof LeaseLostError)) throw error;
    journal(`lost ${d.id}`);
  }
}

async function consumer(ferry: Ferry): Promise<never> {
  for (;;) {
    const deliveries = await ferry.receive(ACK_QUEUE, {
      max: 1 + Math.floor(Math.random() * 16),
      wait: '50ms',
      lease: CHILD_LEASE,
    });
    for (const d of deliveries) journal(`got ${d.id} ${d.attempt} ${marker(d.payload)}`);
    await Promise.all(deliveries.map((d) => ackOne(ferry, d)));
  }
}

function fail(error: unknown): void {
  console.error('crash child failed:', error);
  closeSync(journalFd);
  process.exit(1);
}

const ferry = await open(`sqlite:${dbFile}`);

// work() acks internally: its `completed` events are published only after the ack's commit, so they are
// the moment the ack was answered.
const events = ferry.events({ queue: WORK_QUEUE, types: ['completed'] });
(async () => {
  for await (const e of events) {
    const result = e.result as { by: string; m: string };
    journal(`acked ${e.id} ${result.by} ${result.m}`);
  }
})().catch(fail);

ferry.work(
  WORK_QUEUE,
  async (job) => {
    const m = marker(job.payload);
    journal(`got ${job.id} ${job.attempt} ${m}`);
    if (Math.random() < 0.3) await new Promise((resolve) => setTimeout(resolve, Math.random() * 3));
    return { by: 'work', m };
  },
  { concurrency: 8, lease: CHILD_LEASE, onError: fail },
);
for (let i = 0; i < 2; i++) consumer(ferry).catch(fail);
for (let i = 0; i < 3; i++) producer(ferry, i).catch(fail);

journal('ready');
process.stdout.write('ready\n');
