/** Against a real listening server: SSE resume and heartbeats, stream tokens, body and header limits, graceful close. */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { readSse, type SseMessage } from '../../src/client/sse.ts';
import { type RunningServer, startServer } from '../../src/server/index.ts';
import { qname } from './helpers.ts';

const TOKEN = 'live-test-token-0123456789';
const auth = { authorization: `Bearer ${TOKEN}` };

/** Reads an SSE response message by message, comments included as `event: ':'`. */
async function openStream(url: string, headers: Record<string, string> = {}) {
  const controller = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: controller.signal,
  });
  assert.equal(response.status, 200);
  assert.match(String(response.headers.get('content-type')), /^text\/event-stream/);
  const iterator = readSse(response.body as ReadableStream<Uint8Array>)[Symbol.asyncIterator]();
  // The stream opens with its position: an `id:` with no data.
  const opening = await iterator.next();
  assert.ok(!opening.done && opening.value.data === '' && /^\d+$/.test(opening.value.id ?? ''), 'opens with its seq');
  return {
    async next(): Promise<SseMessage> {
      const { value, done } = await iterator.next();
      assert.ok(!done, 'the stream is open');
      return value;
    },
    close: () => controller.abort(),
  };
}

describe('live server', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ store: 'memory:', port: 0, logger: false, tokens: [TOKEN], heartbeat: '100ms' });
  });
  after(async () => server.close());

  const post = (path: string, body: unknown) =>
    fetch(`${server.url}${path}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    }).then(async (r) => ({ status: r.status, body: await r.json() }));

  it('SSE: id is the seq, event the type; Last-Event-ID resumes with no gap and no duplicate', async () => {
    const q = qname();
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await post(`/v1/queues/${q}/messages`, { payload: i })).body.id);
    const first = await openStream(`${server.url}/v1/events?queue=${q}&after=0`, auth);
    const seen: SseMessage[] = [];
    for (let i = 0; i < 2; i++) seen.push(await first.next());
    first.close();
    for (const [i, m] of seen.entries()) {
      const event = JSON.parse(m.data);
      assert.deepEqual([m.event, m.id, event.id, event.type], ['sent', String(event.seq), ids[i], 'sent']);
    }
    const resumed = await openStream(`${server.url}/v1/events?queue=${q}`, {
      ...auth,
      'last-event-id': seen[1]?.id as string,
    });
    const third = await resumed.next();
    assert.equal(JSON.parse(third.data).id, ids[2], 'the next one, no duplicate, no gap');
    const live = await post(`/v1/queues/${q}/messages`, { payload: 'live' });
    const fourth = await resumed.next();
    assert.equal(JSON.parse(fourth.data).id, live.body.id);
    assert.ok(Number(fourth.id) > Number(third.id));
    resumed.close();
  });

  it('SSE: heartbeat comments on an idle stream; types filter', async () => {
    const q = qname();
    const res = await fetch(`${server.url}/v1/events?queue=${q}&types=completed`, { headers: auth });
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    let text = '';
    const until = Date.now() + 2000;
    while (!text.includes(': ping') && Date.now() < until)
      text += new TextDecoder().decode((await reader.read()).value);
    assert.match(text, /: ping\n\n/);
    await reader.cancel();
    const stream = await openStream(`${server.url}/v1/events?queue=${q}&types=completed`, auth);
    await post(`/v1/queues/${q}/messages`, { payload: 1 });
    const [d] = (await post(`/v1/queues/${q}/receive`, {})).body.messages;
    await post(`/v1/messages/${d.id}/ack`, { receipt: d.receipt });
    const m = await stream.next();
    assert.deepEqual([m.event, JSON.parse(m.data).id], ['completed', d.id]);
    stream.close();
  });

  it('a stream token opens the stream without a header', async () => {
    const q = qname();
    const { body } = await post('/v1/stream-tokens', { queue: q });
    const stream = await openStream(`${server.url}/v1/events?token=${encodeURIComponent(body.token)}`);
    const sent = await post(`/v1/queues/${q}/messages`, { payload: 1 });
    assert.equal(JSON.parse((await stream.next()).data).id, sent.body.id);
    stream.close();
  });

  it('refuses an oversized body with 413 before it is sent, and oversized headers with 431', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(`${server.url}/v1/queues/big/messages`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json', 'content-length': String(64 * 1024 * 1024) },
      });
      req.on('response', (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write('{"payload":"'); // the rest never comes: the answer must not wait for it
    });
    assert.equal(status, 413);
    const big = await fetch(`${server.url}/healthz`, { headers: { 'x-big': 'x'.repeat(20_000) } });
    assert.equal(big.status, 431);
  });

  it('close() answers long polls at once, finishes, and stops accepting', async () => {
    const other = await startServer({ store: 'memory:', port: 0, logger: false });
    const start = Date.now();
    const poll = fetch(`${other.url}/v1/queues/${qname()}/receive`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ wait: '30s' }),
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    await other.close();
    const answer = await poll;
    assert.deepEqual([answer.status, await answer.json()], [200, { messages: [] }]);
    // Far below the poll's 30 s wait, so a loaded machine cannot fail it, yet a close that waited it out would.
    assert.ok(Date.now() - start < 20_000, `closed in ${Date.now() - start} ms`);
    await assert.rejects(fetch(`${other.url}/healthz`));
  });

  it('close() does not wait for connections that carry no request (HTTP API and SQS port)', async () => {
    const other = await startServer({ store: 'memory:', port: 0, sqsPort: 0, logger: false });
    // Connections opened for a request that never came (a client's aborted long poll leaves one), and a
    // keep-alive connection after its answer: a close that waited for their clients took 4-10 s.
    const sockets = [];
    for (const url of [other.url, other.sqsUrl as string]) {
      for (let i = 0; i < 2; i++) {
        const socket = connect(Number(new URL(url).port), '127.0.0.1');
        await once(socket, 'connect');
        sockets.push(socket);
      }
    }
    const kept = new Agent({ keepAlive: true });
    await new Promise<void>((resolve, reject) => {
      httpRequest(`${other.url}/healthz`, { agent: kept }, (res) => {
        res.resume();
        res.on('end', resolve);
      })
        .on('error', reject)
        .end();
    });
    const start = Date.now();
    await other.close();
    const ms = Date.now() - start;
    kept.destroy();
    for (const socket of sockets) socket.destroy();
    assert.ok(ms < 3000, `closed in ${ms} ms`);
  });
});
