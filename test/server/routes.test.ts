/** Every route of SPEC §4 answers as documented (through `inject`, no socket). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { gzipSync } from 'node:zlib';
import { type Harness, harness, qname } from './helpers.ts';

describe('HTTP routes', () => {
  let h: Harness;
  before(async () => {
    h = await harness();
  });
  after(async () => h.close());

  const call = async (method: string, url: string, payload?: unknown) => {
    const r = await h.app.inject({
      method: method as 'GET',
      url,
      ...(payload === undefined ? {} : { payload: payload as object }),
    });
    return { status: r.statusCode, body: r.body ? JSON.parse(r.body) : undefined, headers: r.headers };
  };

  it('send answers 201, a deduplicated send 200; batch answers 201', async () => {
    const q = qname();
    const first = await call('POST', `/v1/queues/${q}/messages`, { payload: { a: 1 }, dedupeId: 'd1', priority: 3 });
    assert.equal(first.status, 201);
    assert.deepEqual(Object.keys(first.body).sort(), ['deduplicated', 'id', 'queue']);
    assert.equal(first.body.deduplicated, false);
    const again = await call('POST', `/v1/queues/${q}/messages`, { payload: { a: 2 }, dedupeId: 'd1' });
    assert.deepEqual([again.status, again.body.id, again.body.deduplicated], [200, first.body.id, true]);
    const batch = await call('POST', `/v1/queues/${q}/batch`, {
      messages: [{ payload: 1 }, { payload: 2, delay: '1h' }],
    });
    assert.equal(batch.status, 201);
    assert.equal(batch.body.messages.length, 2);
    const stats = await call('GET', `/v1/queues/${q}`);
    assert.deepEqual([stats.body.waiting, stats.body.delayed], [2, 1]);
    assert.equal(stats.body.settings.maxAttempts, 3);
  });

  it('joined sends (POST /v1/sends): each item is sent, or refused alone with the error its own request would get', async () => {
    const [q1, q2] = [qname(), qname()];
    const r = await call('POST', '/v1/sends', {
      sends: [
        { queue: q1, payload: { a: 1 }, priority: 3 },
        { queue: 'bad name!', payload: 1 },
        { queue: q2, payload: 2, delay: '1h', dedupeId: 'd' },
        { queue: q1, payload: 3, priority: 'high' },
        { queue: q1 },
        [q1, 4],
        { queue: q1, payload: 5, transaction: {} },
        { queue: q1, payload: 6, bogus: true },
        { queue: q2, payload: 7, dedupeId: 'd' },
      ],
    });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const results = r.body.results as {
      ok: boolean;
      id?: string;
      queue?: string;
      deduplicated?: boolean;
      type?: string;
      detail?: string;
    }[];
    assert.deepEqual(
      results.map((x) => (x.ok ? 'ok' : x.type)),
      [
        'ok',
        'invalid_request',
        'ok',
        'invalid_request',
        'invalid_request',
        'invalid_request',
        'invalid_request',
        'invalid_request',
        'ok',
      ],
    );
    assert.match(results[1]?.detail ?? '', /queue name/);
    assert.match(results[3]?.detail ?? '', /priority/);
    assert.match(results[4]?.detail ?? '', /payload is required/);
    assert.match(results[7]?.detail ?? '', /unknown field "bogus"/);
    assert.deepEqual([results[0]?.queue, results[2]?.queue], [q1, q2]);
    assert.deepEqual([results[8]?.id, results[8]?.deduplicated], [results[2]?.id, true], 'dedupe as a lone send');
    const first = await call('GET', `/v1/messages/${results[0]?.id}`);
    assert.deepEqual([first.body.payload, first.body.priority, first.body.state], [{ a: 1 }, 3, 'waiting']);
    assert.equal((await call('GET', `/v1/messages/${results[2]?.id}`)).body.state, 'delayed');
    const [s1, s2] = [(await call('GET', `/v1/queues/${q1}`)).body, (await call('GET', `/v1/queues/${q2}`)).body];
    assert.deepEqual(
      [s1.waiting, s1.delayed, s2.waiting, s2.delayed],
      [1, 0, 0, 1],
      'only the accepted items were stored',
    );
    for (const body of [
      { sends: [] },
      { sends: Array.from({ length: 1001 }, () => ({ queue: q1, payload: 1 })) },
      {},
      { sends: 1 },
    ]) {
      assert.equal((await call('POST', '/v1/sends', body)).status, 400, JSON.stringify(body).slice(0, 60));
    }
  });

  it('timeout and deadLetter: PATCH sets them, send and receive take timeout, deliveries carry deadline; bad values are 400', async () => {
    const q = qname();
    const dlq = qname('dlq');
    const patched = await call('PATCH', `/v1/queues/${q}`, { timeout: '2m', deadLetter: dlq });
    assert.equal(patched.status, 200);
    assert.deepEqual([patched.body.settings.timeout, patched.body.settings.deadLetter], [120_000, dlq]);
    await call('POST', `/v1/queues/${q}/messages`, { payload: 1, timeout: '1m' });
    const got = await call('POST', `/v1/queues/${q}/receive`, { lease: '5m', timeout: '30s' });
    const [d] = got.body.messages;
    const left = Date.parse(d.deadline) - Date.now();
    assert.ok(left > 20_000 && left <= 30_000, `the receive's timeout wins: ${left} ms left`);
    assert.equal(d.leaseUntil, d.deadline, 'the 5m lease is capped at the deadline');
    const nack = await call('POST', `/v1/messages/${d.id}/nack`, { receipt: d.receipt, retry: false });
    assert.equal(nack.body.state, 'dead');
    const copies = await call('GET', `/v1/queues/${dlq}/messages`);
    assert.equal(copies.body.messages[0].headers['ferry-dead-letter-from'], `${q}/${d.id}`);
    const cleared = await call('PATCH', `/v1/queues/${q}`, { timeout: null, deadLetter: null });
    assert.deepEqual([cleared.body.settings.timeout, cleared.body.settings.deadLetter], [null, null]);
    for (const [method, url, body] of [
      ['PATCH', `/v1/queues/${q}`, { deadLetter: q }],
      ['PATCH', `/v1/queues/${q}`, { deadLetter: 'bad name' }],
      ['PATCH', `/v1/queues/${q}`, { timeout: '10ms' }],
      ['PATCH', `/v1/queues/${q}`, { timeout: 'soon' }],
      ['POST', `/v1/queues/${q}/messages`, { payload: 1, timeout: -1 }],
      ['POST', `/v1/queues/${q}/receive`, { timeout: '9d' }],
    ] as const) {
      const r = await call(method, url, body);
      assert.equal(r.status, 400, `${method} ${JSON.stringify(body)}: ${JSON.stringify(r.body)}`);
      assert.match(r.body.type, /invalid_request/);
    }
    assert.equal((await call('GET', `/v1/queues/${q}`)).body.waiting, 0, 'the refused send sent nothing');
  });

  it('receive, progress, extend, ack; GET shows the result; a stale receipt is 409 lease_lost', async () => {
    const q = qname();
    const sent = await call('POST', `/v1/queues/${q}/messages`, { payload: 'job' });
    const got = await call('POST', `/v1/queues/${q}/receive`, { max: 5, lease: '10s' });
    assert.equal(got.status, 200);
    const [d] = got.body.messages;
    assert.deepEqual([d.id, d.payload, d.attempt], [sent.body.id, 'job', 1]);
    assert.equal(
      (await call('POST', `/v1/messages/${d.id}/progress`, { receipt: d.receipt, progress: 50 })).status,
      200,
    );
    const ext = await call('POST', `/v1/messages/${d.id}/extend`, { receipt: d.receipt, lease: '20s' });
    assert.equal(ext.status, 200);
    assert.ok(Date.parse(ext.body.leaseUntil) > Date.now() + 15_000);
    assert.equal(
      (await call('POST', `/v1/messages/${d.id}/ack`, { receipt: d.receipt, result: { ok: true } })).status,
      200,
    );
    const info = await call('GET', `/v1/messages/${d.id}`);
    assert.deepEqual([info.body.state, info.body.result, info.body.progress], ['completed', { ok: true }, 50]);
    const stale = await call('POST', `/v1/messages/${d.id}/ack`, { receipt: d.receipt });
    assert.equal(stale.status, 409);
    assert.match(String(stale.headers['content-type']), /^application\/problem\+json/);
    assert.equal(stale.body.type, 'lease_lost');
  });

  it('POST /v1/flows answers 201 with the tree of ids; GET children lists them; a bad node is 400, nothing sent', async () => {
    const [p, c] = [qname('parent'), qname('child')];
    const flow = await call('POST', '/v1/flows', {
      queue: p,
      payload: 'p',
      options: { children: 'ignore-failures', priority: 2 },
      children: [
        { queue: c, payload: 1, children: [{ queue: c, payload: 2 }] },
        { queue: c, payload: 3 },
      ],
    });
    assert.equal(flow.status, 201, JSON.stringify(flow.body));
    assert.equal(flow.body.queue, p);
    assert.deepEqual(
      flow.body.children.map((x: { queue: string; children?: unknown[] }) => [x.queue, x.children?.length ?? 0]),
      [
        [c, 1],
        [c, 0],
      ],
    );
    const parent = await call('GET', `/v1/messages/${flow.body.id}`);
    assert.deepEqual([parent.body.state, parent.body.parentId], ['pending', null]);
    const children = await call('GET', `/v1/messages/${flow.body.id}/children`);
    assert.equal(children.status, 200);
    assert.deepEqual(
      children.body.messages.map((m: { state: string; parentId: string }) => [m.state, m.parentId]),
      [
        ['pending', flow.body.id],
        ['waiting', flow.body.id],
      ],
    );
    assert.equal((await call('GET', `/v1/queues/${p}`)).body.pending, 1);
    assert.deepEqual(
      (await call('GET', `/v1/queues/${p}/messages?state=pending`)).body.messages.map((m: { id: string }) => m.id),
      [flow.body.id],
    );
    const q = qname('none');
    for (const body of [
      { queue: q, children: [{ queue: q, children: [{ queue: 'bad name' }] }] },
      { queue: q, children: [{ queue: q, options: { priority: 'high' } }] },
      { queue: q, children: [{ queue: q, children: 'no' }] },
      { queue: q, options: { children: 'always' }, children: [{ queue: q }] },
      { queue: q, children: [7] },
    ]) {
      const r = await call('POST', '/v1/flows', body);
      assert.equal(r.status, 400, JSON.stringify(r.body));
      assert.equal(r.body.type, 'invalid_request');
    }
    assert.deepEqual((await call('GET', `/v1/queues/${q}/messages`)).body.messages, []);
    const unknown = await call('GET', '/v1/messages/0190b6d2-0000-7000-8000-000000000009/children');
    assert.equal(unknown.status, 404);
  });

  it('a text/plain or compressed body is refused as its media type or coding (415), storing nothing', async () => {
    const q = qname();
    const cases = [
      { 'content-type': 'text/plain;charset=UTF-8' },
      { 'content-type': 'application/json', 'content-encoding': 'gzip' },
    ];
    for (const headers of cases) {
      const r = await h.app.inject({
        method: 'POST',
        url: `/v1/queues/${q}/messages`,
        headers,
        payload: headers['content-encoding'] ? gzipSync('{"payload":1}') : '{"payload":1}',
      });
      assert.equal(r.statusCode, 415, `${JSON.stringify(headers)}: ${r.body}`);
      assert.match(JSON.parse(r.body).detail, /application\/json|not supported/);
    }
    const identity = await h.app.inject({
      method: 'POST',
      url: `/v1/queues/${q}/messages`,
      headers: { 'content-type': 'application/json', 'content-encoding': 'identity' },
      payload: '{"payload":1}',
    });
    assert.equal(identity.statusCode, 201, identity.body);
    const blank = await h.app.inject({
      method: 'POST',
      url: `/v1/queues/${q}/messages`,
      headers: { 'content-type': 'application/json', 'content-encoding': '' },
      payload: '{"payload":2}',
    });
    assert.equal(blank.statusCode, 201, blank.body);
    assert.equal((await call('GET', `/v1/queues/${q}/messages`)).body.messages.length, 2);
    // No body at all, as fetch sends `body: ''` (text/plain): the route runs as without one.
    const redriven = await h.app.inject({
      method: 'POST',
      url: `/v1/queues/${q}/redrive`,
      headers: { 'content-type': 'text/plain;charset=UTF-8' },
      payload: '',
    });
    assert.deepEqual([redriven.statusCode, JSON.parse(redriven.body).moved], [200, 0], redriven.body);
  });

  it('an empty batch is sent as the SDK sends it: nothing stored, an empty answer', async () => {
    const q = qname();
    const r = await call('POST', `/v1/queues/${q}/batch`, { messages: [] });
    assert.deepEqual([r.status, r.body], [201, { messages: [] }]);
    assert.deepEqual((await call('GET', `/v1/queues/${q}/messages`)).body.messages, []);
    const bad = await call('POST', `/v1/queues/${q}/batch`, { messages: [{}] });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
  });

  it('receive with no body uses the defaults; an empty queue answers at once', async () => {
    const r = await h.app.inject({ method: 'POST', url: `/v1/queues/${qname()}/receive` });
    assert.deepEqual([r.statusCode, JSON.parse(r.body)], [200, { messages: [] }]);
  });

  it('nack retries or kills; retry and cancel answer the new state; unknown ids are 404', async () => {
    const q = qname();
    const sent = await call('POST', `/v1/queues/${q}/messages`, { payload: 1 });
    const [d] = (await call('POST', `/v1/queues/${q}/receive`, {})).body.messages;
    const nack = await call('POST', `/v1/messages/${d.id}/nack`, { receipt: d.receipt, error: 'boom', retry: false });
    assert.deepEqual([nack.status, nack.body], [200, { state: 'dead' }]);
    assert.deepEqual((await call('POST', `/v1/messages/${sent.body.id}/retry`)).body, { state: 'waiting' });
    assert.deepEqual((await call('DELETE', `/v1/messages/${sent.body.id}`)).body, { state: 'cancelled' });
    const unknown = '0190b6d2-0000-7000-8000-000000000009';
    for (const [method, url] of [
      ['GET', `/v1/messages/${unknown}`],
      ['DELETE', `/v1/messages/${unknown}`],
      ['POST', `/v1/messages/${unknown}/retry`],
    ] as const) {
      const r = await call(method, url);
      assert.equal(r.status, 404, `${method} ${url}`);
      assert.equal(r.body.type, 'not_found');
      assert.match(r.body.detail, /message/);
    }
  });

  it('send ?wait answers 200 with the finished message, or 202 with Location when time runs out', async () => {
    const q = qname();
    const waiting = call('POST', `/v1/queues/${q}/messages?wait=5s`, { payload: 'w' });
    const [d] = (await call('POST', `/v1/queues/${q}/receive`, { wait: '5s' })).body.messages;
    await call('POST', `/v1/messages/${d.id}/ack`, { receipt: d.receipt, result: 42 });
    const done = await waiting;
    assert.deepEqual([done.status, done.body.state, done.body.result], [200, 'completed', 42]);
    const late = await call('POST', `/v1/queues/${q}/messages?wait=50`, { payload: 'x' });
    assert.equal(late.status, 202);
    assert.equal(late.headers.location, `/v1/messages/${late.body.id}`);
    const get = await call('GET', `/v1/messages/${late.body.id}?wait=50ms`);
    assert.deepEqual([get.status, get.body.state], [200, 'waiting']);
    assert.equal((await call('GET', `/v1/messages/${late.body.id}?wait=61s`)).status, 400);
  });

  it('queues: list, PATCH (config and pause), messages page, purge, redrive', async () => {
    const q = qname();
    await call('POST', `/v1/queues/${q}/batch`, { messages: [{ payload: 1 }, { payload: 2 }, { payload: 3 }] });
    const patched = await call('PATCH', `/v1/queues/${q}`, { maxAttempts: 1, paused: true, lease: '1m' });
    assert.deepEqual(
      [patched.status, patched.body.paused, patched.body.settings.maxAttempts, patched.body.settings.lease],
      [200, true, 1, 60_000],
    );
    assert.deepEqual((await call('POST', `/v1/queues/${q}/receive`, {})).body.messages, []);
    await call('PATCH', `/v1/queues/${q}`, { paused: false });
    const [d] = (await call('POST', `/v1/queues/${q}/receive`, {})).body.messages;
    await call('POST', `/v1/messages/${d.id}/nack`, { receipt: d.receipt });
    const all = await call('GET', '/v1/queues');
    assert.ok(all.body.queues.some((s: { name: string; dead: number }) => s.name === q && s.dead === 1));
    const page = await call('GET', `/v1/queues/${q}/messages?limit=2`);
    assert.equal(page.body.messages.length, 2);
    assert.equal(typeof page.body.cursor, 'string');
    const rest = await call('GET', `/v1/queues/${q}/messages?limit=2&cursor=${encodeURIComponent(page.body.cursor)}`);
    assert.equal(rest.body.messages.length, 1);
    const dead = await call('GET', `/v1/queues/${q}/messages?state=dead`);
    assert.deepEqual(
      dead.body.messages.map((m: { id: string }) => m.id),
      [d.id],
    );
    assert.deepEqual((await call('POST', `/v1/queues/${q}/redrive`)).body, { moved: 1 });
    assert.deepEqual((await call('DELETE', `/v1/queues/${q}/messages?state=waiting,dead`)).body, { purged: 3 });
    assert.equal((await call('DELETE', `/v1/queues/${q}/messages?state=lost`)).status, 400);
  });

  it('topics: subscribe, publish fans out, unsubscribe', async () => {
    const topic = qname('t');
    const [a, b] = [qname(), qname()];
    assert.equal((await call('PUT', `/v1/topics/${topic}/subscriptions/${a}`)).status, 200);
    await call('PUT', `/v1/topics/${topic}/subscriptions/${b}`);
    const pub = await call('POST', `/v1/topics/${topic}/messages`, { payload: 'hi' });
    assert.equal(pub.status, 201);
    assert.deepEqual(pub.body.messages.map((m: { queue: string }) => m.queue).sort(), [a, b].sort());
    await call('DELETE', `/v1/topics/${topic}/subscriptions/${b}`);
    assert.deepEqual(
      (await call('POST', `/v1/topics/${topic}/messages`, { payload: 2 })).body.messages.map(
        (m: { queue: string }) => m.queue,
      ),
      [a],
    );
  });

  it('cancellations: a worker learns at once that its active message was cancelled', async () => {
    const q = qname();
    await call('POST', `/v1/queues/${q}/messages`, { payload: 1 });
    const [d] = (await call('POST', `/v1/queues/${q}/receive`, {})).body.messages;
    const watch = call('POST', '/v1/cancellations', { ids: [d.id, 'other'], wait: '10s' });
    const start = Date.now();
    assert.deepEqual((await call('DELETE', `/v1/messages/${d.id}`)).body, { state: 'active' });
    assert.deepEqual((await watch).body, { ids: [d.id] });
    assert.ok(Date.now() - start < 2000);
  });

  it("cancellations: a watcher's new poll answers the one it replaces, empty; other watchers' polls wait on", async () => {
    const q = qname();
    await call('POST', `/v1/queues/${q}/messages`, { payload: 1 });
    const [d] = (await call('POST', `/v1/queues/${q}/receive`, {})).body.messages;
    const first = call('POST', '/v1/cancellations', { ids: [d.id], wait: '10s', watcher: 'w1' });
    const other = call('POST', '/v1/cancellations', { ids: [d.id], wait: '10s', watcher: 'w2' });
    await sleep(50);
    const start = Date.now();
    const second = call('POST', '/v1/cancellations', { ids: [d.id, 'other'], wait: '10s', watcher: 'w1' });
    const replaced = await first;
    assert.equal(replaced.status, 200);
    assert.deepEqual(replaced.body, { ids: [] });
    assert.ok(Date.now() - start < 2000, 'answered when replaced, not at its wait');
    assert.deepEqual((await call('DELETE', `/v1/messages/${d.id}`)).body, { state: 'active' });
    assert.deepEqual((await second).body, { ids: [d.id] });
    assert.deepEqual((await other).body, { ids: [d.id] });
    const bad = await call('POST', '/v1/cancellations', { ids: [d.id], watcher: '' });
    assert.equal(bad.status, 400);
  });

  it('healthz, metrics and openapi.json', async () => {
    assert.deepEqual((await call('GET', '/healthz')).body, { ok: true });
    const metrics = await h.app.inject({ method: 'GET', url: '/metrics' });
    assert.equal(metrics.statusCode, 200);
    assert.match(metrics.body, /ferry_messages\{queue="/);
    assert.match(metrics.body, /ferry_events_total\{queue="[^"]+",type="sent"\}/);
    assert.match(
      metrics.body,
      /ferry_http_requests_total\{method="POST",route="\/v1\/queues\/:queue\/messages",status="201"\}/,
    );
    assert.match(metrics.body, /ferry_send_to_start_seconds_bucket/);
    const doc = (await call('GET', '/openapi.json')).body;
    assert.equal(doc.openapi, '3.1.0');
    for (const path of [
      '/v1/queues/{queue}/messages',
      '/v1/messages/{id}/ack',
      '/v1/events',
      '/v1/topics/{topic}/subscriptions/{queue}',
    ]) {
      assert.ok(doc.paths[path], `documented: ${path}`);
    }
    assert.ok(doc.paths['/v1/queues/{queue}/messages'].post.requestBody);
  });

  it('an unknown field is named, with a near miss suggested and the allowed fields listed', async () => {
    const q = qname();
    const top = await call('POST', `/v1/queues/${q}/messages`, { payload: 1, priorty: 5 });
    assert.equal(top.status, 400);
    assert.equal(
      top.body.detail,
      'body has an unknown field "priorty" (did you mean "priority"?); allowed: payload, delay, runAt, priority, key, dedupeId, maxAttempts, backoff, lease, timeout, headers',
    );
    const nested = await call('POST', `/v1/queues/${q}/messages`, { payload: 1, backoff: { type: 'fixed', zzz: 1 } });
    assert.match(nested.body.detail, /^body\.backoff has an unknown field "zzz"; allowed: type, delay, /);
    assert.doesNotMatch(`${top.body.detail} ${nested.body.detail}`, /schema is false/);
  });

  it('a value outside a set of choices is refused once, with the choices', async () => {
    const q = qname();
    const list = await call('GET', `/v1/queues/${q}/messages?state=bogus`);
    assert.equal(list.status, 400);
    assert.equal(
      list.body.detail,
      'querystring.state must be one of pending, waiting, delayed, active, completed, dead, cancelled',
    );
    const send = await call('POST', `/v1/queues/${q}/messages`, { payload: 1, backoff: { type: 'linear' } });
    assert.equal(send.status, 400);
    assert.match(send.body.detail, /^body\.backoff\.type must be one of exponential, fixed$/);
  });

  it('unknown routes are 404 problems', async () => {
    const r = await call('GET', '/v2/nothing');
    assert.deepEqual([r.status, r.body.type], [404, 'not_found']);
  });
});
