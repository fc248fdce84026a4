/**
 * Webhooks: the endpoints, the fan-out step and the deliveries log, each one function of
 * functions/webhooks.sql. The fan-out's deliveries go through `send` like any message; its events reach the
 * log like a send's.
 */
import type { EventType } from '../../core/types.ts';
import type { NewMessage, WebhookAttemptRecord, WebhookRecord } from '../../store/store.ts';
import { toWebhookAttempt, type WebhookAttemptRow } from '../../store/webhook-rows.ts';
import type { Database } from './connection.ts';
import type { EventLog } from './events.ts';
import { iso, messageColumns } from './rows.ts';

interface WebhookRow {
  name: string;
  url: string;
  queues: string[] | null;
  types: string[];
  secret: string;
  created_at: string;
  updated_at: string;
}

const toWebhook = (r: WebhookRow): WebhookRecord => ({
  name: r.name,
  url: r.url,
  queues: r.queues,
  types: r.types as EventType[],
  secret: r.secret,
  createdAt: Number(r.created_at),
  updatedAt: Number(r.updated_at),
});

export async function putWebhook(db: Database, w: WebhookRecord): Promise<WebhookRecord> {
  const row = await db.call<WebhookRow>(
    `SELECT * FROM ${db.s}.put_webhook($1::text, $2::text, $3::text[], $4::text[], $5::text, $6::int8)`,
    [w.name, w.url, w.queues, w.types, w.secret, w.updatedAt],
  );
  return toWebhook(row);
}

export async function deleteWebhook(db: Database, name: string): Promise<boolean> {
  const row = await db.call<{ deleted: boolean }>(`SELECT ${db.s}.delete_webhook($1::text) AS deleted`, [name]);
  return row.deleted;
}

export async function listWebhooks(db: Database): Promise<WebhookRecord[]> {
  const r = await db.query<WebhookRow>(`SELECT * FROM ${db.s}.webhooks ORDER BY name`);
  return r.rows.map(toWebhook);
}

export async function webhookCursor(db: Database): Promise<number> {
  const r = await db.query<{ seq: string }>(`SELECT seq FROM ${db.s}.webhook_cursor WHERE id = 1`);
  return Number(r.rows[0]?.seq ?? 0);
}

export async function advanceWebhooks(
  db: Database,
  log: EventLog,
  from: number,
  to: number,
  deliveries: NewMessage[],
  now: number,
): Promise<boolean> {
  const row = await db.call<{ advanced: boolean; data: string | null }>(
    `SELECT advanced, data FROM ${db.s}.advance_webhooks($1::int8, $2::int8,
      $3::text[], $4::text[], $5::int[], $6::int8[], $7::text[], $8::text[], $9::text[], $10::text[], $11::int[],
      $12::text[], $13::int[], $14::int[], $15::int8, $16::text, $17::text)`,
    [from, to, ...messageColumns(deliveries), now, iso(now), log.origin],
  );
  log.committed(row.data);
  return row.advanced;
}

export async function recordWebhookAttempts(
  db: Database,
  attempts: WebhookAttemptRecord[],
  keep: number,
): Promise<void> {
  if (attempts.length === 0) return;
  const col = <T>(f: (a: WebhookAttemptRecord) => T) => attempts.map(f);
  await db.call(
    `SELECT ${db.s}.record_webhook_attempts($1::text[], $2::text[], $3::int8[], $4::text[], $5::text[],
      $6::text[], $7::int[], $8::int[], $9::text[], $10::text[], $11::int8[], $12::int[], $13::int)`,
    [
      col((a) => a.webhook),
      col((a) => a.deliveryId),
      col((a) => a.seq),
      col((a) => a.type),
      col((a) => a.queue),
      col((a) => a.messageId),
      col((a) => a.attempt),
      col((a) => a.status),
      col((a) => a.error),
      col((a) => a.outcome),
      col((a) => a.at),
      col((a) => a.durationMs),
      keep,
    ],
  );
}

export async function webhookAttempts(db: Database, name: string, limit: number): Promise<WebhookAttemptRecord[]> {
  const r = await db.query<WebhookAttemptRow>(
    `SELECT * FROM ${db.s}.webhook_attempts WHERE webhook = $1 ORDER BY id DESC LIMIT $2`,
    [name, limit],
  );
  return r.rows.map(toWebhookAttempt);
}
