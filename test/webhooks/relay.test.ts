/**
 * The fan-out's order of reads, against a store whose reads the test holds: an endpoint put while a fan-out
 * pass is running receives the events committed after it was put, though the pass began before it existed.
 * (The conformance suite met this as a rare missing delivery on PostgreSQL under load.)
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { FerryEvent } from '../../src/core/types.ts';
import { systemClock } from '../../src/engine/clock.ts';
import { WebhookRelay } from '../../src/engine/webhooks/relay.ts';
import type { NewMessage, Store, WebhookRecord } from '../../src/store/store.ts';

const hook = (name: string, types: WebhookRecord['types']): WebhookRecord => ({
  name,
  url: `http://127.0.0.1:9/${name}`,
  queues: null,
  types,
  secret: `whsec_${Buffer.alloc(32).toString('base64')}`,
  createdAt: Date.now(),
  updatedAt: Date.now(),
});

describe('webhook fan-out', () => {
  it('an endpoint put while a pass reads the log gets the events committed after it was put', async () => {
    const hooks: WebhookRecord[] = [hook('a', ['completed'])];
    const log: FerryEvent[] = [];
    let cursor = 0;
    const advanced: { to: number; deliveries: NewMessage[] }[] = [];
    const store = {
      listWebhooks: async () => [...hooks],
      webhookCursor: async () => cursor,
      readEvents: async (): Promise<FerryEvent[]> => [],
      advanceWebhooks: async (from: number, to: number, deliveries: NewMessage[]) => {
        if (from !== cursor) return false;
        cursor = to;
        advanced.push({ to, deliveries });
        return true;
      },
      configure: async () => ({}),
    } as unknown as Store;
    let releaseRead: () => void = () => {};
    const readStarted = new Promise<void>((started) => {
      const gate = new Promise<void>((resolve) => (releaseRead = resolve));
      store.readEvents = async (after: number) => {
        started();
        await gate;
        return log.filter((e) => e.seq > after);
      };
    });
    const relay = new WebhookRelay({
      store,
      clock: systemClock,
      allowPrivate: true,
      // Nothing is ever claimed: this test is about the fan-out only.
      receive: (_queue, options) =>
        new Promise((resolve) => options.signal.addEventListener('abort', () => resolve([]), { once: true })),
      ack: async () => {},
      nack: async () => ({}),
    });
    try {
      relay.start();
      await readStarted; // the pass read the endpoints (only `a`) and is reading the log
      hooks.push(hook('b', ['sent'])); // `b` is put, then a message is sent: its event commits after the put
      log.push({ seq: 1, type: 'sent', queue: 'q', id: 'm1', at: new Date().toISOString() });
      releaseRead();
      for (let i = 0; i < 100 && advanced.length === 0; i++) await new Promise((r) => setTimeout(r, 5));
      assert.equal(advanced.length, 1, 'the pass moved the cursor');
      assert.equal(advanced[0]?.to, 1);
      const targets = advanced[0]?.deliveries.map((d) => (JSON.parse(d.payload) as { webhook: string }).webhook);
      assert.deepEqual(targets, ['b'], '`b` receives the event committed after it was put');
    } finally {
      await relay.close();
    }
  });
});
