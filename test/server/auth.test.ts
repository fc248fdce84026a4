/** Auth and limits: every route from the router refuses without a token (401) and outside its scope (403). */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RouteEntry } from '../../src/server/index.ts';
import { parseTokens, startServer } from '../../src/server/index.ts';
import { type Harness, harness } from './helpers.ts';

const FULL = 'full-token-0123456789abcdef';
const SEND = 'send-token-0123456789abcdef';
const RECEIVE = 'recv-token-0123456789abcdef';
const ADMIN = 'admin-token-0123456789abcdef';
const LIMITED = 'limited-token-0123456789abcdef';
const METRICS = 'metrics-token-0123456789abcdef';
const TOKENS = [
  FULL,
  `${SEND}:scopes=send`,
  `${RECEIVE}:scopes=receive`,
  `${ADMIN}:scopes=admin`,
  `${LIMITED}:queues=mine,own.*`,
  `${METRICS}:scopes=metrics`,
];

/** A body that passes validation, so a 403 found after it (routes naming a message by id) is reached. */
function bodyFor(method: string, url: string, queue: string): unknown {
  if (method === 'GET' || method === 'DELETE' || method === 'PUT') return undefined;
  if (url.endsWith('/ack') || url.endsWith('/nack')) return { receipt: 'r' };
  if (url.endsWith('/extend')) return { receipt: 'r', lease: '1s' };
  if (url.endsWith('/progress')) return { receipt: 'r', progress: 1 };
  if (url.endsWith('/release')) return { receipt: 'r' };
  if (url === '/v1/acks') return { acks: [{ id: 'x', receipt: 'r' }] };
  if (url === '/v1/sends') return { sends: [{ queue, payload: 1 }] };
  if (url.startsWith('/v1/schedules/')) return { cron: '* * * * *', queue };
  if (url.endsWith('/batch')) return { messages: [{ payload: 1 }] };
  if (url === '/v1/cancellations') return { ids: ['x'] };
  if (url === '/v1/stream-tokens') return { queue };
  if (url === '/v1/flows') return { queue: 'mine', payload: 1, children: [{ queue, payload: 2 }] };
  if (url.endsWith('/messages')) return { payload: 1 };
  return {};
}

describe('auth over every route', () => {
  let h: Harness;
  let otherId: string;
  before(async () => {
    h = await harness({ tokens: TOKENS });
    otherId = (await h.ferry.send('theirs', 'secret')).id;
  });
  after(async () => h.close());

  const request = (route: RouteEntry, token: string | null, queue: string) => {
    const url = route.url.replace(':queue', queue).replace(':topic', queue).replace(':id', otherId);
    const withQuery = route.url === '/v1/events' ? `${url}?queue=${queue}` : url;
    const body = bodyFor(route.method, route.url, queue);
    return h.app.inject({
      method: route.method as 'GET',
      url: withQuery,
      headers: token ? { authorization: `Bearer ${token}` } : {},
      ...(body === undefined ? {} : { payload: body as object }),
    });
  };

  it('the router lists every route of the API, each with an access rule', () => {
    const routes = h.app.ferryRoutes;
    const v1 = routes.filter((r) => r.url.startsWith('/v1/'));
    assert.ok(v1.length >= 22, `found ${v1.length} /v1 routes`);
    for (const route of routes) assert.ok(route.access, `${route.method} ${route.url} declares its access`);
    for (const route of v1) assert.notEqual(route.access?.scopes, 'public', `${route.url} is not public`);
  });

  it('answers 401 without a token and with a wrong one, on every /v1 route', async () => {
    for (const route of h.app.ferryRoutes.filter((r) => r.access?.scopes !== 'public')) {
      for (const token of [null, 'wrong-token-0123456789abcdef']) {
        const r = await request(route, token, 'theirs');
        assert.equal(r.statusCode, 401, `${route.method} ${route.url} with ${token}: ${r.body}`);
        assert.equal(JSON.parse(r.body).type, 'unauthorized');
        assert.equal(r.headers['www-authenticate'], 'Bearer');
      }
    }
  });

  it('answers 403 to a token outside the route’s scopes, and to a queue-limited token on another queue', async () => {
    let checked = 0;
    for (const route of h.app.ferryRoutes.filter((r) => r.access?.scopes !== 'public')) {
      const scopes = route.access?.scopes as string[];
      // A single-scope token whose scope the route does not accept.
      const outside = Object.entries({ send: SEND, receive: RECEIVE, admin: ADMIN }).find(([s]) => !scopes.includes(s));
      if (outside) {
        const r = await request(route, outside[1], 'theirs');
        assert.equal(r.statusCode, 403, `${route.method} ${route.url} with only ${outside[0]}: ${r.body}`);
        assert.equal(JSON.parse(r.body).type, 'forbidden');
        checked++;
      }
      const limited = await request(route, LIMITED, 'theirs');
      const touchesQueue =
        route.access?.queueParams || route.access?.byId || /events|stream-tokens|flows/.test(route.url);
      if (touchesQueue) {
        assert.equal(limited.statusCode, 403, `${route.method} ${route.url} on another queue: ${limited.body}`);
        checked++;
      }
    }
    assert.ok(checked >= 25, `checked ${checked}`);
  });

  it('a batch of acks answers forbidden, item by item, for messages outside a queue-limited token', async () => {
    const r = await h.app.inject({
      method: 'POST',
      url: '/v1/acks',
      headers: { authorization: `Bearer ${LIMITED}` },
      payload: { acks: [{ id: otherId, receipt: 'r' }] },
    });
    assert.equal(r.statusCode, 200, r.body);
    assert.deepEqual(
      JSON.parse(r.body).results.map((x: { ok: boolean; type: string }) => [x.ok, x.type]),
      [[false, 'forbidden']],
    );
    assert.equal((await h.ferry.get(otherId))?.state, 'waiting', 'nothing changed');
  });

  it('a queue-limited token works on its own queues and sees only them', async () => {
    const auth = { authorization: `Bearer ${LIMITED}` };
    for (const q of ['mine', 'own.a']) {
      const r = await h.app.inject({
        method: 'POST',
        url: `/v1/queues/${q}/messages`,
        headers: auth,
        payload: { payload: 1 },
      });
      assert.equal(r.statusCode, 201);
    }
    const list = await h.app.inject({ method: 'GET', url: '/v1/queues', headers: auth });
    assert.deepEqual(
      JSON.parse(list.body)
        .queues.map((s: { name: string }) => s.name)
        .sort(),
      ['mine', 'own.a'],
    );
    const full = await h.app.inject({ method: 'GET', url: '/v1/queues', headers: { authorization: `Bearer ${FULL}` } });
    assert.ok(JSON.parse(full.body).queues.some((s: { name: string }) => s.name === 'theirs'));
  });

  it('a flow needs every queue of its tree allowed; children are read only when all their queues are', async () => {
    const auth = { authorization: `Bearer ${LIMITED}` };
    const across = await h.app.inject({
      method: 'POST',
      url: '/v1/flows',
      headers: auth,
      payload: { queue: 'mine', children: [{ queue: 'own.b', children: [{ queue: 'theirs' }] }] },
    });
    assert.equal(across.statusCode, 403, across.body);
    assert.match(JSON.parse(across.body).detail, /theirs/);
    assert.equal((await h.ferry.stats('own.b')).pending + (await h.ferry.stats('own.b')).waiting, 0, 'nothing sent');
    const own = await h.app.inject({
      method: 'POST',
      url: '/v1/flows',
      headers: auth,
      payload: { queue: 'mine', payload: 'p', children: [{ queue: 'own.b', payload: 'c' }] },
    });
    assert.equal(own.statusCode, 201, own.body);
    const sent = JSON.parse(own.body);
    const children = await h.app.inject({ method: 'GET', url: `/v1/messages/${sent.id}/children`, headers: auth });
    assert.equal(children.statusCode, 200, children.body);
    assert.deepEqual(
      JSON.parse(children.body).messages.map((m: { id: string }) => m.id),
      [sent.children[0].id],
    );
    const mixed = await h.ferry.sendFlow({ queue: 'mine', children: [{ queue: 'elsewhere' }] });
    const hidden = await h.app.inject({ method: 'GET', url: `/v1/messages/${mixed.id}/children`, headers: auth });
    assert.equal(hidden.statusCode, 403, hidden.body);
  });

  it('public routes need no token; a malformed Authorization header is 401', async () => {
    for (const url of ['/healthz', '/openapi.json']) {
      assert.equal((await h.app.inject({ method: 'GET', url })).statusCode, 200, url);
    }
    const r = await h.app.inject({ method: 'GET', url: '/v1/queues', headers: { authorization: `Basic ${FULL}` } });
    assert.equal(r.statusCode, 401);
  });

  it('/metrics, which names every queue, needs an admin or metrics token that is not limited to some queues', async () => {
    const get = (token: string | null) =>
      h.app.inject({ method: 'GET', url: '/metrics', headers: token ? { authorization: `Bearer ${token}` } : {} });
    const anonymous = await get(null);
    assert.equal(anonymous.statusCode, 401);
    assert.doesNotMatch(anonymous.body, /theirs/);
    for (const token of [SEND, RECEIVE, LIMITED]) assert.equal((await get(token)).statusCode, 403, token);
    for (const token of [FULL, ADMIN, METRICS]) {
      const r = await get(token);
      assert.equal(r.statusCode, 200, token);
      assert.match(r.body, /ferry_messages\{queue="theirs",state="waiting"\} 1/);
    }
    // A metrics token reads metrics and nothing else.
    const queues = await h.app.inject({
      method: 'GET',
      url: '/v1/queues',
      headers: { authorization: `Bearer ${METRICS}` },
    });
    assert.equal(queues.statusCode, 403);
  });

  it('a queue-limited token hears of cancellations only in its own queues', async () => {
    const full = { authorization: `Bearer ${FULL}` };
    const limited = { authorization: `Bearer ${LIMITED}` };
    const ids: Record<string, string> = {};
    for (const q of ['mine', 'theirs']) {
      const sent = await h.app.inject({
        method: 'POST',
        url: `/v1/queues/${q}/messages`,
        headers: full,
        payload: { payload: 'c' },
      });
      ids[q] = JSON.parse(sent.body).id;
    }
    for (const q of ['mine', 'theirs']) {
      // Receive until this test's message is active (earlier tests left others in these queues).
      let active = false;
      while (!active) {
        const r = await h.app.inject({
          method: 'POST',
          url: `/v1/queues/${q}/receive`,
          headers: full,
          payload: { max: 100 },
        });
        const got = JSON.parse(r.body).messages as { id: string }[];
        assert.ok(got.length > 0, `the message of ${q} is delivered`);
        active = got.some((m) => m.id === ids[q]);
      }
      const cancel = await h.app.inject({ method: 'DELETE', url: `/v1/messages/${ids[q]}`, headers: full });
      assert.deepEqual(JSON.parse(cancel.body), { state: 'active' });
    }
    const ask = (headers: Record<string, string>) =>
      h.app.inject({ method: 'POST', url: '/v1/cancellations', headers, payload: { ids: [ids.mine, ids.theirs] } });
    assert.deepEqual(JSON.parse((await ask(limited)).body).ids, [ids.mine]);
    assert.deepEqual(JSON.parse((await ask(full)).body).ids, [ids.mine, ids.theirs]);
    // A long poll for the other queue's id alone waits it out rather than answering.
    const theirs = await h.app.inject({
      method: 'POST',
      url: '/v1/cancellations',
      headers: limited,
      payload: { ids: [ids.theirs], wait: '200ms' },
    });
    assert.deepEqual(JSON.parse(theirs.body).ids, []);
  });

  it('a stream token works only for the events stream; a forged or expired one is 401', async () => {
    const issued = await h.app.inject({
      method: 'POST',
      url: '/v1/stream-tokens',
      headers: { authorization: `Bearer ${LIMITED}` },
      payload: { queue: 'mine', ttl: '1m' },
    });
    assert.equal(issued.statusCode, 200);
    const { token, expiresAt } = JSON.parse(issued.body);
    assert.ok(Date.parse(expiresAt) > Date.now());
    const elsewhere = await h.app.inject({ method: 'GET', url: `/v1/queues?token=${encodeURIComponent(token)}` });
    assert.equal(elsewhere.statusCode, 401, 'not a bearer token for the API');
    const forged = `${token.slice(0, -3)}AAA`;
    assert.equal(
      (await h.app.inject({ method: 'GET', url: `/v1/events?token=${encodeURIComponent(forged)}` })).statusCode,
      401,
    );
    const other = await h.app.inject({
      method: 'GET',
      url: `/v1/events?queue=theirs&token=${encodeURIComponent(token)}`,
    });
    assert.equal(other.statusCode, 403, 'bound to its queue');
  });

  it('joined sends answer forbidden, item by item, for queues outside a queue-limited token', async () => {
    const before = await h.ferry.stats('theirs');
    const r = await h.app.inject({
      method: 'POST',
      url: '/v1/sends',
      headers: { authorization: `Bearer ${LIMITED}` },
      payload: {
        sends: [
          { queue: 'theirs', payload: 'x' },
          { queue: 'own.joined', payload: 'y' },
        ],
      },
    });
    assert.equal(r.statusCode, 200, r.body);
    const [refused, sent] = JSON.parse(r.body).results;
    assert.deepEqual([refused.ok, refused.type], [false, 'forbidden']);
    assert.equal(sent.ok, true);
    assert.equal((await h.ferry.get(sent.id))?.queue, 'own.joined');
    assert.deepEqual(await h.ferry.stats('theirs'), before, 'nothing was sent to theirs');
  });
});

describe('tokens, binding, rate limit and CORS', () => {
  it('parses the token format and refuses malformed entries', () => {
    const [a, b] = parseTokens(['aaaaaaaaaaaaaaaa:queues=x,y*:scopes=send bbbbbbbbbbbbbbbb']);
    assert.deepEqual([a?.grant.scopes, a?.grant.queues], [['send'], ['x', 'y*']]);
    assert.deepEqual(b?.grant.scopes, ['send', 'receive', 'admin']);
    for (const bad of [
      'short',
      'aaaaaaaaaaaaaaaa:scopes=fly',
      'aaaaaaaaaaaaaaaa:colour=red',
      'aaaaaaaaaaaaaaaa:queues=!',
    ]) {
      assert.throws(() => parseTokens([bad]), /token/, bad);
    }
  });

  it('refuses a non-loopback bind without a token, and allows it with one', async () => {
    await assert.rejects(
      startServer({ store: 'memory:', host: '0.0.0.0', port: 0, logger: false, tokens: [] }),
      /refusing to listen/,
    );
    const server = await startServer({ store: 'memory:', host: '0.0.0.0', port: 0, logger: false, tokens: [FULL] });
    await server.close();
  });

  it('answers 429 with Retry-After past the per-token rate', async () => {
    const h = await harness({ tokens: [FULL, `${SEND}:scopes=send`], rateLimit: { perSecond: 1, burst: 2 } });
    try {
      const get = (token: string) =>
        h.app.inject({ method: 'GET', url: '/v1/queues', headers: { authorization: `Bearer ${token}` } });
      assert.equal((await get(FULL)).statusCode, 200);
      assert.equal((await get(FULL)).statusCode, 200);
      const limited = await get(FULL);
      assert.equal(limited.statusCode, 429);
      assert.equal(JSON.parse(limited.body).type, 'rate_limited');
      assert.ok(Number(limited.headers['retry-after']) >= 1);
      assert.equal((await get(SEND)).statusCode, 403, 'another token has its own bucket');
    } finally {
      await h.close();
    }
  });

  it('CORS answers only allowlisted origins, never *', async () => {
    const h = await harness({ cors: ['https://app.example'] });
    try {
      const pre = await h.app.inject({
        method: 'OPTIONS',
        url: '/v1/queues/q/messages',
        headers: {
          origin: 'https://app.example',
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'authorization,content-type',
        },
      });
      assert.equal(pre.statusCode, 204);
      assert.equal(pre.headers['access-control-allow-origin'], 'https://app.example');
      const evil = await h.app.inject({
        method: 'GET',
        url: '/v1/queues',
        headers: { origin: 'https://evil.example' },
      });
      assert.equal(evil.headers['access-control-allow-origin'], undefined);
    } finally {
      await h.close();
    }
  });
});
