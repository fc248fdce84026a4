/** `ferry topics` and `ferry schedules`, against a store and against a server. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { ScheduleInfo } from '../../src/core/types.ts';
import { ferry, finish, firstLine, json, start, tempDir } from './helpers.ts';

const temp = tempDir();
after(() => temp.remove());
const store = `sqlite:${join(temp.dir, 'admin.db')}`;
const run = (args: string[]) => ferry(args, { env: { FERRY_STORE: store } });

describe('ferry topics', () => {
  it('subscribe, ls, publish and unsubscribe, in human and JSON output', async () => {
    assert.equal(
      (await run(['topics', 'subscribe', 'orders', 'shipping'])).stdout.trim(),
      'shipping is subscribed to orders',
    );
    assert.equal((await run(['topics', 'subscribe', 'orders', 'billing'])).code, 0);
    assert.equal((await run(['topics', 'subscribe', 'orders', 'billing'])).code, 0, 'again is a no-op');
    assert.equal((await run(['topics', 'ls', 'orders'])).stdout, 'billing\nshipping\n');

    const published = json<{ messages: { queue: string; id: string }[] }>(
      await run(['topics', 'publish', 'orders', '{"order":42}', '--json']),
    );
    assert.deepEqual(published.messages.map((m) => m.queue).sort(), ['billing', 'shipping']);
    const human = await run(['topics', 'publish', 'orders', '{"order":43}']);
    assert.match(human.stdout, /^billing\s+[0-9a-f-]{36}$/m);

    assert.equal((await run(['topics', 'unsubscribe', 'orders', 'billing'])).code, 0);
    assert.deepEqual(json(await run(['topics', 'ls', 'orders', '--json'])), { topic: 'orders', queues: ['shipping'] });
    assert.match((await run(['topics', 'ls', 'nobody'])).stdout, /no queue is subscribed to nobody/);
    const bare = await run(['topics']);
    assert.equal(bare.code, 2);
    assert.match(bare.stderr, /ls, subscribe, unsubscribe or publish/);
  });

  it('works over --server through GET /v1/topics/{topic}/subscriptions, which the OpenAPI document lists', async (t) => {
    const server = start(['serve', '--store', 'memory:', '--port', '0', '--json']);
    const done = finish(server, '', 60_000);
    t.after(() => server.kill('SIGKILL'));
    const { url } = JSON.parse(await firstLine(server)) as { url: string };
    const remote = (args: string[]) => ferry([...args, '--server', url]);
    assert.equal((await remote(['topics', 'subscribe', 'news', 'mail'])).code, 0);
    assert.equal((await remote(['topics', 'subscribe', 'news', 'feed'])).code, 0);
    assert.deepEqual(json(await remote(['topics', 'ls', 'news', '--json'])), {
      topic: 'news',
      queues: ['feed', 'mail'],
    });
    const answer = await fetch(`${url}/v1/topics/news/subscriptions`);
    assert.deepEqual(await answer.json(), { queues: ['feed', 'mail'] });
    const openapi = (await (await fetch(`${url}/openapi.json`)).json()) as { paths: Record<string, object> };
    assert.ok('get' in (openapi.paths['/v1/topics/{topic}/subscriptions'] ?? {}), 'the route is documented');
    server.kill('SIGTERM');
    assert.equal((await done).code, 0);
  });
});

describe('ferry schedules', () => {
  it('put, ls and rm; removing a missing one exits 3', async () => {
    const put = await run([
      'schedules',
      'put',
      'nightly',
      '{"report":"daily"}',
      '--cron',
      '0 3 * * *',
      '--tz',
      'Europe/Paris',
      '--queue',
      'reports',
    ]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^nightly: 0 3 \* \* \* \(Europe\/Paris\) into reports, next at \d{4}-/);
    const listed = json<ScheduleInfo[]>(await run(['schedules', 'ls', '--json']));
    const nightly = listed.find((s) => s.name === 'nightly');
    assert.deepEqual([nightly?.queue, nightly?.tz, nightly?.payload], ['reports', 'Europe/Paris', { report: 'daily' }]);
    assert.match((await run(['schedules', 'ls'])).stdout, /^nightly\s+0 3 \* \* \*\s+Europe\/Paris\s+reports/m);
    assert.equal((await run(['schedules', 'rm', 'nightly'])).stdout.trim(), 'removed schedule nightly');
    const again = await run(['schedules', 'rm', 'nightly']);
    assert.equal(again.code, 3);
    assert.match(again.stderr, /no schedule named nightly/);
    assert.match((await run(['schedules', 'ls'])).stdout, /no schedules yet/);
  });

  it('a bad cron or time zone is refused once, in words the user can act on', async () => {
    const cron = await run(['schedules', 'put', 'bad', '--cron', '61 * * * *', '--queue', 'r']);
    assert.equal(cron.code, 2);
    assert.equal(cron.stderr.trim(), 'ferry: cron "61 * * * *" is not valid: Invalid value for minute: 61');
    const tz = await run(['schedules', 'put', 'bad', '--cron', '0 3 * * *', '--tz', 'Mars/Base', '--queue', 'r']);
    assert.equal(tz.code, 2);
    assert.equal(tz.stderr.trim(), 'ferry: tz "Mars/Base" is not a time zone: use an IANA name such as "Europe/Paris"');
    const missing = await run(['schedules', 'put', 'bad', '--queue', 'r']);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--cron/);
  });
});
