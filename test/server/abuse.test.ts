/**
 * The server under abuse, over real sockets: oversized bodies, idle and half-open connections, malformed
 * requests that never reach a route. The body-size tests run the server in its own process (`ferry serve`):
 * in one process the client's writes and the server's reads take turns on one event loop, which hides the
 * broken pipe a separate client sees.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { type Socket, connect as tcp } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/index.ts';
import { readSse } from '../../src/client/sse.ts';
import { PayloadTooLargeError, UnavailableError } from '../../src/core/errors.ts';
import type { Ferry } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { createServer, type RunningServer, startServer } from '../../src/server/index.ts';
import { finish, firstLine, start } from '../cli/helpers.ts';
import { qname } from './helpers.ts';

const MiB = 1024 * 1024;

describe('oversized bodies, server in another process', () => {
  let child: ChildProcess;
  let url: string;
  before(async () => {
    child = start(['serve', '--store', 'memory:', '--port', '0', '--json', '--log-level', 'warn']);
    url = (JSON.parse(await firstLine(child, 60_000)) as { url: string }).url;
  });
  after(async () => {
    const done = finish(child, '', 30_000);
    child.kill('SIGTERM');
    await done;
  });

  for (const mib of [2.1, 8]) {
    it(`answers a ${mib} MiB body with a 413 problem, five times out of five, never a broken pipe`, async () => {
      const body = JSON.stringify({ payload: 'x'.repeat(Math.round(mib * MiB)) });
      for (let i = 0; i < 5; i++) {
        const response = await fetch(`${url}/v1/queues/${qname()}/messages`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        assert.equal(response.status, 413, `attempt ${i + 1}`);
        assert.match(String(response.headers.get('content-type')), /^application\/problem\+json/);
        assert.equal(((await response.json()) as { type: string }).type, 'payload_too_large');
      }
    });
  }

  it('connect().send of an 8 MiB payload throws PayloadTooLargeError, which is not worth retrying', async () => {
    const ferry = await connect(url);
    await assert.rejects(ferry.send(qname(), 'x'.repeat(8 * MiB)), PayloadTooLargeError);
    // The connection that carried the refused body still serves the next request.
    assert.equal((await ferry.send(qname(), 'small')).deduplicated, false);
  });
});

/** A raw TCP connection to `url`, with everything it receives collected in `text()`. */
async function rawSocket(url: string): Promise<{ socket: Socket; text: () => string; closed: Promise<unknown> }> {
  const { hostname, port } = new URL(url);
  const socket = tcp(Number(port), hostname);
  let received = '';
  socket.setEncoding('utf8').on('data', (chunk: string) => {
    received += chunk;
  });
  socket.on('error', () => {});
  const closed = once(socket, 'close');
  await once(socket, 'connect');
  return { socket, text: () => received, closed };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('idle connections', () => {
  const IDLE_MS = 300;
  let server: RunningServer;
  before(async () => {
    server = await startServer({ store: 'memory:', port: 0, logger: false, idleTimeout: IDLE_MS, heartbeat: '1h' });
  });
  after(async () => server.close());

  it('closes sockets that never send a request, and keep-alive sockets after their last answer', {
    timeout: 60_000,
  }, async () => {
    const silent = await Promise.all(Array.from({ length: 10 }, () => rawSocket(server.url)));
    const kept = await Promise.all(Array.from({ length: 10 }, () => rawSocket(server.url)));
    for (const k of kept) k.socket.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    // The test's timeout is the hang guard: with no idle timeout these would stay open for good.
    await Promise.all([...silent, ...kept].map((s) => s.closed));
    for (const k of kept) assert.match(k.text(), /^HTTP\/1\.1 200 /, 'answered before being closed');
  });

  it('does not cut a long poll that waits longer than the idle timeout', async () => {
    const response = await fetch(`${server.url}/v1/queues/${qname()}/receive`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ wait: IDLE_MS * 4 }),
    });
    assert.deepEqual([response.status, await response.json()], [200, { messages: [] }]);
  });

  it('does not cut an event stream that stays silent longer than the idle timeout', async () => {
    const q = qname();
    const controller = new AbortController();
    const response = await fetch(`${server.url}/v1/events?queue=${q}`, { signal: controller.signal });
    const messages = readSse(response.body as ReadableStream<Uint8Array>)[Symbol.asyncIterator]();
    assert.equal((await messages.next()).value?.data, '', 'the opening position');
    await sleep(IDLE_MS * 4);
    const ferry = await connect(server.url);
    const { id } = await ferry.send(q, 'late');
    const next = await messages.next();
    assert.ok(!next.done, 'the stream is still open');
    assert.equal(JSON.parse(next.value.data).id, id);
    controller.abort();
  });
});

/** Sends `request` as it is on a new connection and resolves with what came back before the server closed it. */
async function exchange(url: string, request: string): Promise<{ status: number; headers: string; body: string }> {
  const raw = await rawSocket(url);
  raw.socket.end(request);
  await raw.closed;
  const text = raw.text();
  const split = text.indexOf('\r\n\r\n');
  const head = text.slice(0, split);
  return { status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1]), headers: head, body: text.slice(split + 4) };
}

function assertProblem(answer: { status: number; headers: string; body: string }, status: number, type: string): void {
  assert.equal(answer.status, status, answer.headers);
  assert.match(answer.headers, /content-type: application\/problem\+json/i);
  const body = JSON.parse(answer.body) as { type: string; status: number; detail: string };
  assert.deepEqual([body.type, body.status], [type, status]);
  assert.ok(body.detail.length > 0);
}

describe('slow senders', () => {
  it('a request still arriving after requestTimeout gets a 408 problem and is closed', {
    timeout: 60_000,
  }, async () => {
    // The idle timeout is out of the way, so only the request timeout can end this.
    const server = await startServer({
      store: 'memory:',
      port: 0,
      logger: false,
      idleTimeout: '1h',
      requestTimeout: 400,
    });
    try {
      const raw = await rawSocket(server.url);
      raw.socket.write('POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n');
      await raw.closed;
      const text = raw.text();
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.match(text, /content-type: application\/problem\+json/i);
      assert.equal(JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)).status, 408);
    } finally {
      await server.close();
    }
  });
});

describe('requests refused before any route', () => {
  let server: RunningServer;
  before(async () => {
    server = await startServer({ store: 'memory:', port: 0, logger: false });
  });
  after(async () => server.close());

  it('malformed HTTP is a 400 problem', async () => {
    assertProblem(await exchange(server.url, 'HELLO THERE\r\n\r\n'), 400, 'invalid_request');
    assertProblem(
      await exchange(server.url, 'POST /v1/queues/q/messages HTTP/1.1\r\nHost: x\r\nContent-Length: zz\r\n\r\n'),
      400,
      'invalid_request',
    );
  });

  it('headers over the limit are a 431 problem', async () => {
    const big = `GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: ${'x'.repeat(20_000)}\r\n\r\n`;
    assertProblem(await exchange(server.url, big), 431, 'invalid_request');
  });

  it('a bad percent-encoding is a 400 problem, an over-long parameter a 414 problem', async () => {
    const bad = await fetch(`${server.url}/v1/messages/%zz`);
    assert.match(String(bad.headers.get('content-type')), /^application\/problem\+json/);
    assert.deepEqual([bad.status, ((await bad.json()) as { type: string }).type], [400, 'invalid_request']);
    const long = await fetch(`${server.url}/v1/messages/${'a'.repeat(600)}`);
    assert.match(String(long.headers.get('content-type')), /^application\/problem\+json/);
    assert.deepEqual([long.status, ((await long.json()) as { type: string }).type], [414, 'invalid_request']);
  });

  it('a known path under a wrong method is 405 with Allow; an unknown path stays 404', async () => {
    const receive = await fetch(`${server.url}/v1/queues/q/receive`);
    assert.equal(receive.status, 405);
    assert.equal(receive.headers.get('allow'), 'POST');
    assert.match(String(receive.headers.get('content-type')), /^application\/problem\+json/);
    const health = await fetch(`${server.url}/healthz/`, { method: 'DELETE' });
    assert.deepEqual([health.status, health.headers.get('allow')], [405, 'GET, HEAD']);
    const messages = await fetch(`${server.url}/v1/queues/q/messages`, { method: 'PATCH' });
    assert.deepEqual([messages.status, messages.headers.get('allow')], [405, 'DELETE, GET, HEAD, POST']);
    const unknown = await fetch(`${server.url}/v1/nothing/here`, { method: 'DELETE' });
    assert.deepEqual([unknown.status, unknown.headers.get('allow')], [404, null]);
  });
});

/** A Ferry whose writes fail as a full disk makes them fail, until `full` is set back to false. */
function fillableFerry(ferry: Ferry): { ferry: Ferry; disk: { full: boolean } } {
  const disk = { full: false };
  const writes = new Set(['send', 'sendBatch', 'ack', 'nack', 'configure']);
  const wrapped = new Proxy(ferry, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function') return value;
      if (typeof prop === 'string' && writes.has(prop)) {
        return (...args: unknown[]) => {
          if (disk.full) return Promise.reject(new UnavailableError('SQLITE_FULL: database or disk is full'));
          return value.apply(target, args);
        };
      }
      return value.bind(target);
    },
  });
  return { ferry: wrapped, disk };
}

describe('a store whose writes fail', () => {
  it('answers 503 with Retry-After, logs a warning, and /healthz names the failing check until a write succeeds', async () => {
    const lines: { level: number; msg: string }[] = [];
    const logger = { level: 'info', stream: { write: (line: string) => lines.push(JSON.parse(line)) } };
    const memory = await open('memory:');
    const { ferry, disk } = fillableFerry(memory);
    const app = await createServer(ferry, { logger });
    try {
      const send = () => app.inject({ method: 'POST', url: `/v1/queues/${qname()}/messages`, payload: { payload: 1 } });
      const health = () => app.inject({ method: 'GET', url: '/healthz' });
      assert.equal((await health()).statusCode, 200);

      disk.full = true;
      const refused = await send();
      assert.equal(refused.statusCode, 503);
      assert.ok(Number(refused.headers['retry-after']) >= 1, 'Retry-After');
      assert.equal(JSON.parse(refused.body).type, 'unavailable');
      const warned = lines.find((l) => /SQLITE_FULL/.test(l.msg));
      assert.equal(warned?.level, 40, 'logged as a warning');
      assert.ok(!lines.some((l) => l.msg === 'unexpected error'));

      const sick = await health();
      assert.equal(sick.statusCode, 503);
      assert.match(String(sick.headers['content-type']), /^application\/problem\+json/);
      const body = JSON.parse(sick.body);
      assert.equal(body.check, 'writes');
      assert.match(body.detail, /SQLITE_FULL/);
      // Reads still answer: a read is no proof that writes work again.
      assert.equal((await app.inject({ method: 'GET', url: '/v1/queues' })).statusCode, 200);
      assert.equal((await health()).statusCode, 503);

      disk.full = false;
      assert.equal((await send()).statusCode, 201);
      assert.deepEqual(JSON.parse((await health()).body), { ok: true });
    } finally {
      await app.close();
      await memory.close();
    }
  });
});

describe('a store that stops answering', () => {
  it('/healthz answers 503 (check: store) after its timeout instead of hanging, and 200 once the store answers', {
    timeout: 10_000,
  }, async () => {
    const memory = await open('memory:');
    let stalled = true;
    let asked = 0;
    const ferry = new Proxy(memory, {
      get(target, key, receiver) {
        if (key === 'get' && stalled) {
          return () => {
            asked++;
            return new Promise(() => {});
          };
        }
        const value = Reflect.get(target, key, receiver);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
    const app = await createServer(ferry, { logger: false, healthTimeout: '200ms' });
    try {
      const started = Date.now();
      const sick = await app.inject({ method: 'GET', url: '/healthz' });
      assert.equal(sick.statusCode, 503);
      const body = JSON.parse(sick.body);
      assert.equal(body.check, 'store');
      assert.match(body.detail, /no answer within 200 ms/);
      assert.ok(Date.now() - started < 2000, 'answered at its timeout');
      // Probes while the store hangs share a question (one per timeout), not one each.
      const again = await Promise.all([1, 2, 3, 4].map(() => app.inject({ method: 'GET', url: '/healthz' })));
      assert.deepEqual(
        again.map((r) => r.statusCode),
        [503, 503, 503, 503],
      );
      assert.equal(asked, 2, 'a question per timeout to a hung store');
      stalled = false;
      assert.deepEqual(JSON.parse((await app.inject({ method: 'GET', url: '/healthz' })).body), { ok: true });
    } finally {
      await app.close();
      await memory.close();
    }
  });
});
