/**
 * The HTTP tier scales out: two `ferry serve` processes on one PostgreSQL schema behave as one broker. A
 * message sent through one is received and acked through the other; a `?wait` (and `result()`) on one
 * answers when the other acks; the SSE stream of each shows every event of both, once, in the same order.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { after, before, it } from 'node:test';
import { connect } from '../../src/client/index.ts';
import type { Ferry, FerryEvent } from '../../src/core/types.ts';
import { firstLine, start } from '../cli/helpers.ts';
import { testSchema } from '../support/postgres.ts';

let schema: Awaited<ReturnType<typeof testSchema>>;
const servers: { proc: ChildProcess; url: string; ferry: Ferry }[] = [];

async function serve(store: string): Promise<(typeof servers)[number]> {
  const proc = start(['serve', '--store', store, '--port', '0', '--json', '--log-level', 'warn']);
  // Generous: four tsx processes may start at once on a loaded machine.
  const { url } = JSON.parse(await firstLine(proc, 60_000)) as { url: string };
  return { proc, url, ferry: await connect(url) };
}

before(async () => {
  schema = await testSchema('two_servers');
  servers.push(...(await Promise.all([serve(schema.url), serve(schema.url)])));
});

after(async () => {
  for (const s of servers) {
    await s.ferry.close();
    if (s.proc.exitCode === null && s.proc.signalCode === null) {
      s.proc.kill('SIGTERM');
      await once(s.proc, 'close');
    }
  }
  await schema.drop();
});

const pair = () => servers as [(typeof servers)[0], (typeof servers)[0]];
const queueName = (label: string) => `${label}-${Math.random().toString(36).slice(2, 8)}`;

it('a message sent through one server is received and acked through the other', async () => {
  const [a, b] = pair();
  const queue = queueName('cross');
  const sent = await a.ferry.send(queue, { n: 1 });
  const [delivery] = await b.ferry.receive(queue, { max: 1, wait: '20s' });
  assert.ok(delivery, 'the other server delivered the message');
  assert.equal(delivery.id, sent.id);
  assert.deepEqual(delivery.payload, { n: 1 });
  await b.ferry.ack(delivery, { by: 'b' });
  const info = await a.ferry.get(sent.id);
  assert.equal(info?.state, 'completed');
  assert.deepEqual(info?.result, { by: 'b' });
});

it('a ?wait and a result() on one server answer when the other acks', async () => {
  const [a, b] = pair();
  const queue = queueName('wait');
  // POST …?wait holds the request open on A until the message finishes, here through B.
  const waiting = fetch(`${a.url}/v1/queues/${queue}/messages?wait=30s`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ payload: { n: 1 } }),
  });
  // result() over HTTP is a GET /v1/messages/{id}?wait on A.
  const sent = await a.ferry.send(queue, { n: 2 });
  const result = sent.result({ timeout: '30s' });
  const deliveries = [];
  while (deliveries.length < 2) deliveries.push(...(await b.ferry.receive(queue, { max: 2, wait: '20s' })));
  for (const d of deliveries) await b.ferry.ack(d, { done: (d.payload as { n: number }).n });

  const response = await waiting;
  assert.equal(response.status, 200);
  const body = (await response.json()) as { id: string; state: string; result: unknown };
  assert.equal(body.state, 'completed');
  assert.deepEqual(body.result, { done: 1 });
  assert.ok(deliveries.some((d) => d.id === body.id));
  assert.deepEqual(await result, { done: 2 });
});

it('the SSE stream of each server shows every event of both, once, in the same order', {
  timeout: 120_000,
}, async () => {
  const [a, b] = pair();
  const queue = queueName('sse');
  const COUNT = 40;
  const streams = [a, b].map((s) => s.ferry.events({ queue }));
  const read = streams.map(async (stream) => {
    const seen: [number, string, string][] = [];
    let completed = 0;
    for await (const e of stream as AsyncIterable<FerryEvent>) {
      seen.push([e.seq, e.type, e.id]);
      if (e.type === 'completed' && ++completed === COUNT) break;
    }
    stream.close();
    return seen;
  });
  // Both streams are open (the server sent their starting position) before the first event.
  await Promise.all(streams.map((s) => s.since()));

  // Workers on both servers; every fifth message fails its first attempt, so retries cross servers too.
  const handler = (job: { payload: unknown; attempt: number }) => {
    const { n } = job.payload as { n: number };
    if (n % 5 === 0 && job.attempt === 1) throw new Error('first attempt fails');
    return { n };
  };
  await Promise.all(
    [a, b].map((s) => s.ferry.configure(queue, { backoff: { type: 'fixed', delay: 10 }, maxAttempts: 3 })),
  );
  const workers = [a, b].map((s) => s.ferry.work(queue, handler, { concurrency: 4, onError: () => {} }));
  const ids: string[] = [];
  for (let n = 0; n < COUNT; n++) ids.push((await (n % 2 ? b : a).ferry.send(queue, { n })).id);
  const [viaA, viaB] = (await Promise.all(read)) as [[number, string, string][], [number, string, string][]];
  await Promise.all(workers.map((w) => w.close()));

  assert.deepEqual(viaB, viaA, 'both servers streamed the same events in the same order');
  const seqs = viaA.map(([seq]) => seq);
  assert.equal(new Set(seqs).size, seqs.length, 'no event twice');
  const byId = new Map<string, string[]>();
  for (const [, type, id] of viaA) byId.set(id, [...(byId.get(id) ?? []), type]);
  assert.deepEqual([...byId.keys()].sort(), [...ids].sort(), 'events of every message sent through either server');
  ids.forEach((id, n) => {
    const expected =
      n % 5 === 0 ? ['sent', 'active', 'retrying', 'active', 'completed'] : ['sent', 'active', 'completed'];
    assert.deepEqual(byId.get(id), expected, `message ${n}`);
  });
});
