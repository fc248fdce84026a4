/**
 * Webhooks: the endpoints, the fan-out cursor (moved by compare-and-set, in the transaction that inserts the
 * deliveries, so each event fans out once across processes sharing the file) and the deliveries log.
 */
import type Database from 'better-sqlite3';
import type { EventType } from '../../core/types.ts';
import type { NewMessage, PendingEvent, WebhookAttemptRecord, WebhookRecord } from '../../store/store.ts';
import { toWebhookAttempt, type WebhookAttemptRow } from '../../store/webhook-rows.ts';
import type { Queues } from './admin.ts';
import { preparer, type Stmt } from './connection.ts';
import type { EventLog } from './events.ts';
import type { Send } from './send.ts';

interface WebhookRow {
  name: string;
  url: string;
  queues: string | null;
  types: string;
  secret: string;
  created_at: number;
  updated_at: number;
}

const toWebhook = (r: WebhookRow): WebhookRecord => ({
  name: r.name,
  url: r.url,
  queues: r.queues === null ? null : (JSON.parse(r.queues) as string[]),
  types: JSON.parse(r.types) as EventType[],
  secret: r.secret,
  createdAt: r.created_at,
  updatedAt: r.updated_at,
});

export class Webhooks {
  private readonly any: Stmt<{ n: number }>;
  private readonly upsert: Stmt<WebhookRow>;
  private readonly remove: Stmt<unknown>;
  private readonly removeAttempts: Stmt<unknown>;
  private readonly all: Stmt<WebhookRow>;
  private readonly cursor: Stmt<{ seq: number }>;
  private readonly moveCursor: Stmt<unknown>;
  private readonly startCursor: Stmt<unknown>;
  private readonly addAttempt: Stmt<unknown>;
  private readonly trimAttempts: Stmt<unknown>;
  private readonly attempts: Stmt<WebhookAttemptRow>;

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
    private readonly sender: Send,
    private readonly log: EventLog,
  ) {
    const s = preparer(db);
    this.any = s('SELECT count(*) AS n FROM webhooks');
    this.upsert = s(
      `INSERT INTO webhooks (name, url, queues, types, secret, created_at, updated_at)
       VALUES (@name, @url, @queues, @types, @secret, @at, @at)
       ON CONFLICT (name) DO UPDATE SET url = excluded.url, queues = excluded.queues, types = excluded.types,
         secret = excluded.secret, updated_at = excluded.updated_at
       RETURNING *`,
    );
    this.remove = s('DELETE FROM webhooks WHERE name = ?');
    this.removeAttempts = s('DELETE FROM webhook_attempts WHERE webhook = ?');
    this.all = s('SELECT * FROM webhooks ORDER BY name');
    this.cursor = s('SELECT seq FROM webhook_cursor WHERE id = 1');
    this.moveCursor = s('UPDATE webhook_cursor SET seq = ? WHERE id = 1 AND seq = ?');
    this.startCursor = s('UPDATE webhook_cursor SET seq = max(seq, ?) WHERE id = 1');
    this.addAttempt = s(
      `INSERT INTO webhook_attempts (webhook, delivery_id, seq, type, queue, message_id, attempt, status, error,
         outcome, at, duration_ms)
       VALUES (@webhook, @deliveryId, @seq, @type, @queue, @messageId, @attempt, @status, @error, @outcome, @at,
         @durationMs)`,
    );
    this.trimAttempts = s(
      `DELETE FROM webhook_attempts WHERE webhook = ? AND id <= (
         SELECT id FROM webhook_attempts WHERE webhook = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    this.attempts = s('SELECT * FROM webhook_attempts WHERE webhook = ? ORDER BY id DESC LIMIT ?');
  }

  put(w: WebhookRecord): WebhookRecord {
    // The first endpoint starts from the end of the log, not from the history it retains.
    if ((this.any.get() as { n: number }).n === 0) this.startCursor.run(this.log.lastSeq());
    const row = this.upsert.get({
      name: w.name,
      url: w.url,
      queues: w.queues === null ? null : JSON.stringify(w.queues),
      types: JSON.stringify(w.types),
      secret: w.secret,
      at: w.updatedAt,
    }) as WebhookRow;
    return toWebhook(row);
  }

  delete(name: string): boolean {
    this.removeAttempts.run(name);
    return this.remove.run(name).changes > 0;
  }

  list(): WebhookRecord[] {
    return this.all.all().map(toWebhook);
  }

  position(): number {
    return this.cursor.get()?.seq ?? 0;
  }

  advance(from: number, to: number, deliveries: NewMessage[], now: number, events: PendingEvent[]): boolean {
    if (this.moveCursor.run(to, from).changes === 0) return false;
    if (deliveries.length > 0) this.queues.ensure((deliveries[0] as NewMessage).queue);
    for (const m of deliveries) this.sender.insert(m, now, events);
    return true;
  }

  record(attempts: WebhookAttemptRecord[], keep: number): void {
    const touched = new Set<string>();
    for (const a of attempts) {
      this.addAttempt.run(a);
      touched.add(a.webhook);
    }
    for (const name of touched) this.trimAttempts.run(name, name, keep);
  }

  recent(name: string, limit: number): WebhookAttemptRecord[] {
    return this.attempts.all(name, limit).map(toWebhookAttempt);
  }
}
