/**
 * Four processes on one database: two producers send 20,000 keyed messages, two workers process them with
 * random failures and retries. From the event log: each message completed exactly once, no two leases of a
 * message (nor of a key) ever overlapped, and each key's messages completed in send order.
 */
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FerryEvent } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { testSchema } from '../support/postgres.ts';

const CHILD = fileURLToPath(new URL('./multiprocess-child.ts', import.meta.url));
const TOTAL = 20_000;
let schema: Awaited<ReturnType<typeof testSchema>>;

before(async () => {
  schema = await testSchema('multiprocess');
});
after(async () => {
  await schema.drop();
});

/** A child whose stdout lines are collected from the start: a fast child may finish before anyone asks. */
function child(args: string[]): { proc: ChildProcess; lines: AsyncIterator<string> } {
  const proc = spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  let buffer = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
    wake?.();
  });
  proc.stdout?.on('end', () => {
    ended = true;
    wake?.();
  });
  async function* read() {
    for (;;) {
      const line = lines.shift();
      if (line !== undefined) yield line;
      else if (ended) return;
      else await new Promise<void>((resolve) => (wake = resolve));
    }
  }
  return { proc, lines: read() };
}

it('two producers and two workers in four processes: exactly once, no overlapping leases, key order', async () => {
  const queue = 'multi';
  const ferry = await open(schema.url);
  await ferry.configure(queue, { maxAttempts: 20, backoff: { type: 'fixed', delay: 5 }, lease: '20s' });

  const workers = [child([schema.url, queue, 'worker', '0', '0']), child([schema.url, queue, 'worker', '0', '0'])];
  for (const w of workers) assert.equal((await w.lines.next()).value, 'ready');
  const started = Date.now();
  const producers = [0, 1].map((i) => child([schema.url, queue, 'producer', String(i), String(TOTAL / 2)]));
  for (const p of producers) {
    const line = (await p.lines.next()).value;
    if (line !== 'done') {
      const [code, signal] = p.proc.exitCode !== null ? [p.proc.exitCode, null] : await once(p.proc, 'exit');
      assert.fail(`a producer ended without finishing: exit code ${code}, signal ${signal}`);
    }
  }

  for (;;) {
    const stats = await ferry.stats(queue);
    if (stats.completed === TOTAL) break;
    assert.equal(stats.dead, 0);
    if (Date.now() - started > 50_000) assert.fail(`only ${stats.completed} of ${TOTAL} completed in 50 s`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  const elapsed = Date.now() - started;
  let failures = 0;
  for (const w of workers) {
    w.proc.stdin?.write('stop\n');
    failures += (JSON.parse((await w.lines.next()).value as string) as { failed: number }).failed;
    await once(w.proc, 'exit').catch(() => {});
  }
  console.log(
    `# ${TOTAL} messages through 2 producers and 2 workers in ${elapsed} ms, ${failures} failed attempts retried`,
  );
  assert.ok(failures > 0, 'some attempts failed and were retried');

  // Replay the whole log.
  const events: FerryEvent[] = [];
  const stream = ferry.events({ after: 0 });
  const last = await (async () => {
    for await (const e of stream) {
      if (e.queue === queue) events.push(e);
      if (events.filter((x) => x.type === 'completed').length === TOTAL) break;
    }
    stream.close();
    return events.at(-1)?.seq ?? 0;
  })();
  assert.ok(last > 0);
  for (let i = 1; i < events.length; i++) assert.ok((events[i] as FerryEvent).seq > (events[i - 1] as FerryEvent).seq);

  const leased = new Set<string>();
  const keyOf = new Map<string, string>();
  const activeKeys = new Set<string>();
  const completed = new Map<string, number>();
  const lastN = new Map<string, number>();
  for (const e of events) {
    if (e.type === 'sent') continue;
    if (e.type === 'active') {
      assert.ok(!leased.has(e.id), `two live leases on ${e.id}`);
      leased.add(e.id);
      continue;
    }
    if (e.type === 'completed' || e.type === 'retrying' || e.type === 'dead') {
      assert.ok(leased.has(e.id), `${e.type} of ${e.id} without a lease`);
      leased.delete(e.id);
      if (e.type === 'completed') completed.set(e.id, (completed.get(e.id) ?? 0) + 1);
    }
  }
  assert.equal(completed.size, TOTAL);
  assert.ok(
    [...completed.values()].every((n) => n === 1),
    'each completed exactly once',
  );

  // Key order and one active per key: read each message's key and sequence number.
  const info = new Map<string, { key: string; n: number }>();
  for (let cursor: string | null = null; ; ) {
    const p = await ferry.list(queue, { limit: 1000, cursor });
    for (const m of p.messages) info.set(m.id, m.payload as { key: string; n: number });
    cursor = p.cursor;
    if (!cursor) break;
  }
  for (const e of events) {
    const m = info.get(e.id);
    if (!m) continue;
    keyOf.set(e.id, m.key);
    if (e.type === 'active') {
      assert.ok(!activeKeys.has(m.key), `two active messages of key ${m.key}`);
      activeKeys.add(m.key);
      assert.equal(m.n, (lastN.get(m.key) ?? 0) + 1, `key ${m.key} out of order`);
    } else if (e.type === 'retrying') activeKeys.delete(m.key);
    else if (e.type === 'completed') {
      activeKeys.delete(m.key);
      lastN.set(m.key, m.n);
    }
  }
  assert.equal(keyOf.size, TOTAL);
  await ferry.close();
});
