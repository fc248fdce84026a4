/**
 * Dead-letter queues (SPEC §6): a message that becomes dead in a queue whose `deadLetter` is set is also
 * sent, as a new message with its payload and headers plus `ferry-dead-letter-from: <queue>/<id>`, to that
 * queue, inside the transaction that made it dead. The copy takes the target queue's defaults. Every path
 * to dead goes through {@link Settle.finish}, which calls this.
 */
import { v7 } from 'uuid';
import { checkSendOptions } from '../../core/validate.ts';
import { DEAD_LETTER_HEADER } from '../../store/constants.ts';
import type { PendingEvent } from '../../store/store.ts';
import type { Queues } from './admin.ts';
import type { Row } from './rows.ts';
import type { Send } from './send.ts';

export class DeadLetter {
  constructor(
    private readonly queues: Queues,
    private readonly send: Send,
  ) {}

  /** Copies `row`, which just became dead, to its queue's dead-letter queue, if it has one. */
  copy(row: Row, now: number, events: PendingEvent[]): void {
    const target = this.queues.settings(row.queue).deadLetter;
    if (target === null) return;
    this.queues.ensure(target);
    const headers = row.headers === null ? {} : (JSON.parse(row.headers) as Record<string, string>);
    headers[DEAD_LETTER_HEADER] = `${row.queue}/${row.id}`;
    // Every option at its default: the target queue's settings apply.
    const defaults = checkSendOptions(undefined, now);
    const copy = { ...defaults, id: v7(), queue: target, payload: row.payload, headers: JSON.stringify(headers) };
    this.send.insert(copy, now, events);
  }
}
