/** A store whose event listener throws: the operations are answered, the process does not crash. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { describe, it } from 'node:test';
import { SqliteStore } from '../../src/stores/sqlite/index.ts';

describe('sqlite store: a throwing onEvents', () => {
  it('is reported as a warning after the commit; the callers are answered and the store goes on', async () => {
    const store = new SqliteStore(':memory:');
    let calls = 0;
    await store.init({
      retryDelay: () => 0,
      onEvents: () => {
        calls++;
        throw new Error('listener bug');
      },
    });
    let crashed: unknown;
    const onCrash = (error: unknown) => {
      crashed = error;
    };
    process.on('uncaughtException', onCrash);
    try {
      const warned = once(process, 'warning');
      const message = {
        id: randomUUID(),
        queue: 'q',
        payload: '1',
        priority: 0,
        key: null,
        dedupeId: null,
        maxAttempts: null,
        backoff: null,
        lease: null,
        timeout: null,
        headers: null,
        runAt: 0,
      };
      const [sent] = await store.send([message], 1);
      assert.equal(sent?.id, message.id);
      const [warning] = (await warned) as [Error & { code?: string }];
      assert.equal(warning.code, 'FERRY_LISTENER_ERROR');
      const [claimed] = await store.claim('q', 1, 1000, 2);
      assert.deepEqual(
        await store.complete([{ id: message.id, receipt: claimed?.receipt as string, result: null }], 3),
        ['completed'],
      );
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(calls, 3, 'each commit delivered its events');
      assert.equal(crashed, undefined, 'nothing escaped to the process');
    } finally {
      process.off('uncaughtException', onCrash);
      await store.close();
    }
  });
});
