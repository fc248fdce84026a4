/** Credentials never reach what the server or the CLI prints or logs. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redactUrl } from '../../src/core/redact.ts';
import { open } from '../../src/index.ts';
import { ferry, finish, start } from '../cli/helpers.ts';
import { testSchema } from '../support/postgres.ts';

describe('credentials in URLs', () => {
  it('redactUrl keeps user, host, path and harmless parameters, not passwords or tokens', () => {
    const cases: [string, string][] = [
      ['postgres://ferry:s3cret@db:5432/app?schema=x', 'postgres://ferry:***@db:5432/app?schema=x'],
      ['postgresql://ferry:p@ss@db/app', 'postgresql://ferry:***@db/app'],
      ['postgres://db/app?password=s3cret&schema=x', 'postgres://db/app?password=***&schema=x'],
      ['could not reach postgres://u:pw@h/db: refused', 'could not reach postgres://u:***@h/db: refused'],
      ['/v1/events?queue=a&token=abc.def', '/v1/events?queue=a&token=***'],
      ['sqlite:./ferry-data/ferry.db', 'sqlite:./ferry-data/ferry.db'],
      ['postgres://ferry@db/app', 'postgres://ferry@db/app'],
    ];
    for (const [given, shown] of cases) assert.equal(redactUrl(given), shown);
  });

  it('a mistyped store URL does not echo its password', async () => {
    await assert.rejects(open('postgress://ferry:s3cret@db/app'), (error: Error) => {
      assert.doesNotMatch(error.message, /s3cret/);
      assert.match(error.message, /postgress:\/\/ferry:\*\*\*@db\/app/);
      return true;
    });
  });

  it('a CLI error naming a URL does not echo its password', async () => {
    const run = await ferry(['stats', '--server', 'http://ferry:cli-s3cret@127.0.0.1:9/', '--json']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /ferry:\*\*\*@127\.0\.0\.1:9/);
    assert.doesNotMatch(run.stdout + run.stderr, /cli-s3cret/);
  });

  it('the serve banner shows the PostgreSQL URL without its password', async (t) => {
    const { url, drop } = await testSchema('redact-banner');
    t.after(drop);
    const withPassword = new URL(url);
    withPassword.username ||= 'postgres';
    // The test server trusts local connections, so the password is never checked, only printed or not.
    withPassword.password = 'banner-s3cret';
    const server = start(['serve', '--store', withPassword.href, '--port', '0']);
    const done = finish(server, '', 60_000);
    t.after(() => server.kill('SIGKILL'));
    let stdout = '';
    server.stdout?.on('data', (chunk: Buffer) => {
      stdout += chunk.toString();
      if (/store\s+\S+/.test(stdout)) server.kill('SIGTERM');
    });
    const exit = await done;
    assert.match(stdout, /store\s+postgres(ql)?:\/\/[^\s]*:\*\*\*@/, exit.stderr);
    assert.doesNotMatch(stdout + exit.stdout + exit.stderr, /banner-s3cret/);
  });
});
