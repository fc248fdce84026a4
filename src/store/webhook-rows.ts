/** The deliveries log's row, the same columns in both stores (PostgreSQL answers int8 as text). */
import type { EventType } from '../core/types.ts';
import type { WebhookAttemptRecord } from './store.ts';

export interface WebhookAttemptRow {
  webhook: string;
  delivery_id: string;
  seq: number | string;
  type: string;
  queue: string;
  message_id: string;
  attempt: number;
  status: number | null;
  error: string | null;
  outcome: string;
  at: number | string;
  duration_ms: number;
}

export function toWebhookAttempt(r: WebhookAttemptRow): WebhookAttemptRecord {
  return {
    webhook: r.webhook,
    deliveryId: r.delivery_id,
    seq: Number(r.seq),
    type: r.type as EventType,
    queue: r.queue,
    messageId: r.message_id,
    attempt: r.attempt,
    status: r.status,
    error: r.error,
    outcome: r.outcome as WebhookAttemptRecord['outcome'],
    at: Number(r.at),
    durationMs: r.duration_ms,
  };
}
