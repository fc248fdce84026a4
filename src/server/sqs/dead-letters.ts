/**
 * RedrivePolicy's copy to the dead-letter queue. Ferry makes a message `dead` once its attempts (SQS's
 * maxReceiveCount) are used up; this follows the `dead` events and sends a copy (same body, attributes and
 * headers, plus `ferry-dead-letter-from: <queue>/<id>`) to the queue the policy names. The original stays
 * dead in its queue, as Ferry keeps dead messages for inspection and redrive.
 *
 * It works above the store, not inside it: the copy is a second transaction, made by whichever process
 * follows the events (every server with an SQS port). The copy's dedupe id is the original's id, so copies
 * made twice (two processes, a restart) are one message, and a catch-up pass over each queue's dead messages
 * at start covers deaths that happened while no server followed. A per-queue `deadLetter` setting in the
 * stores (SPEC §6) would make it one transaction.
 */
import type { EventStream, Ferry, MessageInfo } from '../../core/types.ts';
import { DEAD_LETTER_HEADER } from './message-attributes.ts';
import { arnQueue, redrivePolicy } from './queue-attributes.ts';
import type { QueueDirectory } from './queues.ts';

export class DeadLetters {
  #stream: EventStream | null = null;

  constructor(
    private readonly ferry: Ferry,
    private readonly queues: QueueDirectory,
    private readonly onError: (error: unknown) => void,
  ) {}

  start(): void {
    const stream = this.ferry.events({ types: ['dead'] });
    this.#stream = stream;
    void (async () => {
      try {
        await stream.since();
        await this.catchUp();
        for await (const event of stream) {
          try {
            await this.copy(event.queue, event.id);
          } catch (error) {
            // The catch-up pass of the next start copies it; the others go on.
            this.onError(error);
          }
        }
      } catch (error) {
        if (this.#stream === stream) this.onError(error);
      }
    })();
  }

  stop(): void {
    const stream = this.#stream;
    this.#stream = null;
    stream?.close();
  }

  /** Copies the dead messages of every queue with a redrive policy (the dedupe id skips those already copied). */
  async catchUp(): Promise<void> {
    for (const queue of await this.queues.list()) {
      if (!redrivePolicy(queue)) continue;
      let cursor: string | null = null;
      do {
        const page = await this.ferry.list(queue.name, { state: 'dead', limit: 500, cursor });
        for (const info of page.messages) await this.send(info);
        cursor = page.cursor;
      } while (cursor !== null && this.#stream !== null);
    }
  }

  async copy(queueName: string, id: string): Promise<void> {
    const queue = await this.queues.find(queueName);
    if (!queue || !redrivePolicy(queue)) return;
    const info = await this.ferry.get(id);
    if (info?.state === 'dead') await this.send(info);
  }

  async send(info: MessageInfo): Promise<void> {
    const queue = await this.queues.find(info.queue);
    const policy = queue ? redrivePolicy(queue) : null;
    const target = policy ? arnQueue(policy.deadLetterTargetArn) : null;
    if (target === null || !(await this.queues.find(target))) return;
    await this.ferry.send(target, info.payload, {
      headers: { ...info.headers, [DEAD_LETTER_HEADER]: `${info.queue}/${info.id}` },
      dedupeId: `dead-letter:${info.id}`,
      ...(info.key === null ? {} : { key: info.key }),
    });
  }
}
