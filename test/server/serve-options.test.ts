/** `ferry serve` options for the server itself: the per-token rate limit and the event log's retention. */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { describe, it, type TestContext } from 'node:test';
import { readSse } from '../../src/client/sse.ts';
import { ferry, finish, firstLine, start } from '../cli/helpers.ts';

/** Starts `ferry serve ARGS… --json` on a free port; stopped (SIGTERM, then waited for) when the test ends. */
async function serve(t: TestContext, args: string[], env: Record<string, string> = {}): Promise<string> {
  const child: ChildProcess = start(['serve', '--store', 'memory:', '--port', '0', '--json', ...args], { env });
  const done = finish(child, '', 60_000);
  t.after(async () => {
    child.kill('SIGTERM');
    await done;
  });
  return (JSON.parse(await firstLine(child, 60_000)) as { url: string }).url;
}

describe('ferry serve options', () => {
  for (const [how, args, env] of [
    ['--rate-limit', ['--rate-limit', '1/h:2'], {}],
    ['FERRY_RATE_LIMIT', [], { FERRY_RATE_LIMIT: '2/h:2' }],
  ] as const) {
    it(`${how} limits requests per caller, answering 429 with Retry-After past it`, async (t) => {
      const url = await serve(t, [...args], { ...env });
      // A burst of 2, refilled at most once every half hour: the third request in a row is refused.
      const statuses: number[] = [];
      let refused: Response | undefined;
      for (let i = 0; i < 3; i++) {
        const response = await fetch(`${url}/v1/queues`);
        statuses.push(response.status);
        if (response.status === 429) refused = response;
        else await response.body?.cancel();
      }
      assert.deepEqual(statuses, [200, 200, 429]);
      assert.ok(refused);
      assert.ok(Number(refused.headers.get('retry-after')) > 60);
      assert.equal(((await refused.json()) as { type: string }).type, 'rate_limited');
    });
  }

  it('refuses a malformed --rate-limit before listening', async () => {
    const run = await ferry(['serve', '--store', 'memory:', '--port', '0', '--rate-limit', 'fast']);
    assert.notEqual(run.code, 0);
    assert.match(run.stderr, /N\/s, N\/m or N\/h/);
  });

  it('--event-retention drops older events from the log that streams replay', { timeout: 60_000 }, async (t) => {
    const url = await serve(t, ['--event-retention', '1s']);
    const send = async (payload: string) => {
      const response = await fetch(`${url}/v1/queues/kept/messages`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ payload }),
      });
      return ((await response.json()) as { id: string }).id;
    };
    const old = await send('old');
    /** The id of the oldest event the log still replays. */
    const oldest = async (): Promise<string> => {
      const controller = new AbortController();
      const response = await fetch(`${url}/v1/events?after=0`, { signal: controller.signal });
      for await (const message of readSse(response.body as ReadableStream<Uint8Array>)) {
        if (message.data) {
          controller.abort();
          return (JSON.parse(message.data) as { id: string }).id;
        }
      }
      throw new Error('the stream ended');
    };
    assert.equal(await oldest(), old);
    // The sweep runs every second; the test's timeout is the hang guard.
    let fresh = old;
    while ((await oldest()) === old) {
      fresh = await send('fresh');
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assert.notEqual(fresh, old, 'newer events are kept while the old ones go');
  });
});
