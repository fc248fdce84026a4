/** `ferry serve`, and the other commands against it with --server. */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import type { MessageInfo, QueueStats } from '../../src/core/types.ts';
import { ferry, finish, firstLine, json, start, tempDir } from './helpers.ts';

const temp = tempDir();
after(() => temp.remove());

describe('ferry serve', () => {
  it('serves the API and the dashboard, takes --server commands, and exits 0 on SIGTERM', async (t) => {
    const server = start(['serve', '--store', `sqlite:${join(temp.dir, 'serve.db')}`, '--port', '0', '--json']);
    const done = finish(server, '', 60_000);
    t.after(() => server.kill('SIGKILL'));
    const { url } = JSON.parse(await firstLine(server)) as { url: string };
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);

    const sent = await ferry(['send', 'remote', '{"via":"http"}', '--server', url, '--json']);
    assert.equal(sent.code, 0, sent.stderr);
    const { id } = json<{ id: string }>(sent);
    const info = json<MessageInfo>(await ferry(['get', id, '--json'], { env: { FERRY_SERVER: url } }));
    assert.deepEqual(info.payload, { via: 'http' });
    const stats = json<QueueStats[]>(await ferry(['stats', '--server', url, '--json']));
    assert.equal(stats.find((q) => q.name === 'remote')?.waiting, 1);
    const missing = await ferry(['get', '01900000-0000-7000-8000-000000000000', '--server', url]);
    assert.equal(missing.code, 3);

    const page = await fetch(`${url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    assert.match(await page.text(), /data-queue="remote"/);

    server.kill('SIGTERM');
    const exit = await done;
    assert.equal(exit.code, 0, exit.stderr);
  });

  it('with a token, commands without it exit 5 and with it succeed', async (t) => {
    const token = 'cli-test-token-0123456789';
    const server = start(['serve', '--store', 'memory:', '--port', '0', '--json'], { env: { FERRY_TOKENS: token } });
    const done = finish(server, '', 60_000);
    t.after(() => server.kill('SIGKILL'));
    const { url, auth } = JSON.parse(await firstLine(server)) as { url: string; auth: boolean };
    assert.equal(auth, true);
    const refused = await ferry(['stats', '--server', url]);
    assert.equal(refused.code, 5, refused.stderr);
    const allowed = await ferry(['stats', '--server', url, '--token', token]);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.match(allowed.stdout, /no queues yet/);
    server.kill('SIGINT');
    assert.equal((await done).code, 0);
  });

  it('refuses a bad port and a public address without a token', async () => {
    const port = await ferry(['serve', '--store', 'memory:', '--port', 'http']);
    assert.equal(port.code, 2);
    const open = await ferry(['serve', '--store', 'memory:', '--host', '0.0.0.0', '--port', '0']);
    assert.equal(open.code, 2, open.stderr);
    assert.match(open.stderr, /token/);
  });
});
