/**
 * A remote worker learns of cancels through one long poll of `POST /v1/cancellations` (src/client/cancel-watch.ts),
 * renewed as its set of messages grows, through a real socket: the renewal must not cost a connection per
 * message (an aborted HTTP/1.1 request takes its socket along), and cancels must still reach every job at
 * once, from a server that knows `watcher` and from one that refuses it.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, type Ferry, type Worker } from '../../src/client/index.ts';
import { type Harness, harness, qname } from '../server/helpers.ts';

async function served(): Promise<{ h: Harness; url: string; connections: () => number }> {
  const h = await harness();
  let connections = 0;
  h.app.server.on('connection', () => connections++);
  const url = await h.app.listen({ port: 0, host: '127.0.0.1' });
  return { h, url, connections: () => connections };
}

/** Cancels through the server's route, as a remote caller would (a cancel in-process flags nothing there). */
async function cancel(h: Harness, id: string): Promise<void> {
  const r = await h.app.inject({ method: 'DELETE', url: `/v1/messages/${id}` });
  assert.deepEqual(JSON.parse(r.body), { state: 'active' });
}

/** A worker whose jobs wait for their signal (at most `ms`), recording which ones saw it fire. */
function holding(client: Ferry, q: string, ms: number) {
  const started = new Map<string, number>();
  const aborted = new Set<string>();
  const worker: Worker = client.work(
    q,
    async (job) => {
      started.set(job.id, Date.now());
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, ms);
        job.signal.addEventListener(
          'abort',
          () => {
            aborted.add(job.id);
            clearTimeout(timer);
            resolve();
          },
          { once: true },
        );
      });
    },
    { concurrency: 8, onError: () => {} },
  );
  return { worker, started, aborted };
}

async function until(what: string, check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/**
 * Two messages taken one after the other (the second renews the poll), then both cancelled: each job's signal
 * must fire at once, not at a lease renewal.
 */
async function cancelTwo(h: Harness, client: Ferry): Promise<void> {
  const q = qname();
  const { worker, started, aborted } = holding(client, q, 10_000);
  try {
    const a = await h.ferry.send(q, 'a');
    await until('a to start', () => started.has(a.id));
    const b = await h.ferry.send(q, 'b');
    await until('b to start', () => started.has(b.id));
    await sleep(50);
    await cancel(h, a.id);
    await until('a to see its signal', () => aborted.has(a.id), 2000);
    await cancel(h, b.id);
    await until('b to see its signal', () => aborted.has(b.id), 2000);
  } finally {
    await worker.close();
  }
}

describe('connect(): the cancel watch of a remote worker', () => {
  let h: Harness;
  let url: string;
  let connections: () => number;
  before(async () => {
    ({ h, url, connections } = await served());
  });
  after(async () => h.close());

  it('messages taken one at a time cost no connection each', async () => {
    const client = await connect(url);
    const q = qname();
    const { worker, started } = holding(client, q, 40);
    try {
      await sleep(100);
      const before = connections();
      for (let i = 0; i < 40; i++) {
        await h.ferry.send(q, i);
        await until('the job to start', () => started.size === i + 1);
        await sleep(10);
      }
      await until('all completed', () => started.size === 40);
      const opened = connections() - before;
      // Each message's arrival renews the poll; aborting it (the old way) opened one connection per message.
      assert.ok(opened <= 8, `${opened} connections opened for 40 messages`);
    } finally {
      await worker.close();
      await client.close();
    }
  });

  it('a cancel reaches a job taken before the poll was renewed, and one taken after, at once', async () => {
    const client = await connect(url);
    try {
      await cancelTwo(h, client);
    } finally {
      await client.close();
    }
  });

  it('a server that refuses `watcher` (older): cancels still reach every job', async () => {
    let refused = 0;
    const older: typeof fetch = async (input, init) => {
      const path = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url).pathname;
      if (path === '/v1/cancellations' && typeof init?.body === 'string' && init.body.includes('"watcher"')) {
        refused++;
        return new Response(
          JSON.stringify({
            type: 'invalid_request',
            title: 'Invalid request',
            status: 400,
            detail: 'body has an unknown field "watcher"; allowed: ids, wait',
          }),
          { status: 400, headers: { 'content-type': 'application/problem+json' } },
        );
      }
      return fetch(input, init);
    };
    const client = await connect(url, { fetch: older });
    try {
      await cancelTwo(h, client);
      assert.equal(refused, 1, 'asked once');
    } finally {
      await client.close();
    }
  });
});
