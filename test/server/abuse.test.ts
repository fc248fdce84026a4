/**
 * The server under abuse, over real sockets: oversized bodies, idle and half-open connections, malformed
 * requests that never reach a route. The body-size tests run the server in its own process (`ferry serve`):
 * in one process the client's writes and the server's reads take turns on one event loop, which hides the
 * broken pipe a separate client sees.
 */
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { connect } from '../../src/client/index.ts';
import { PayloadTooLargeError } from '../../src/core/errors.ts';
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
