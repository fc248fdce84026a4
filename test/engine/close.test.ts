/** close(): a worker started while close() drains is refused, and the process exits once close() is done. */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const CHILD = fileURLToPath(new URL('./close-child.ts', import.meta.url));

describe('Ferry.close()', () => {
  it('refuses work() while draining, and leaves nothing that keeps the process alive', {
    timeout: 120_000,
  }, async () => {
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
    });
    // Hang guard only: a process kept alive by a forgotten worker never exits, and the test's timeout fails it.
    const [code] = (await once(child, 'exit')) as [number | null];
    assert.equal(code, 0, 'the process exited by itself');
    const { refused } = JSON.parse(out) as { refused: string };
    assert.match(refused, /^UnavailableError: .*clos/);
  });
});
