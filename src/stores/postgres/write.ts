/** Inserting messages and settling leases: the batched statements of the hot path. */
import type pg from 'pg';
import type { QueueSettings } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import type { Failure, NewMessage, PendingEvent, SendOutcome, StoreContext } from '../../store/store.ts';
import { distinctKeys, lockKeys, type QueueKey, unblockNext } from './keys.ts';
import { CANCELLED, COMPLETED, DEAD, effective, LEASE_EXPIRED, messageColumns, QUEUED } from './rows.ts';

export interface Ctx {
  /** Quoted schema. */
  s: string;
  schema: string;
}

/** A conflict that resolves itself when the transaction runs again. */
function retryable(message: string): Error {
  return Object.assign(new Error(message), { code: '40001' });
}

export async function ensureQueues(client: pg.ClientBase, ctx: Ctx, names: string[]): Promise<void> {
  if (names.length === 0) return;
  await client.query(
    `INSERT INTO ${ctx.s}.queues (name) SELECT DISTINCT unnest($1::text[]) ON CONFLICT (name) DO NOTHING`,
    [names],
  );
}

/** Inserts `messages` in order (dedupe and ordering keys applied); pushes a `sent` event per new message. */
export async function insertMessages(
  client: pg.ClientBase,
  ctx: Ctx,
  messages: NewMessage[],
  now: number,
  events: PendingEvent[],
): Promise<SendOutcome[]> {
  const { s } = ctx;
  const keys = distinctKeys(messages);
  await lockKeys(client, ctx.s, keys);
  // A keyed message is blocked when its key has an unfinished message, or an earlier one in this batch.
  const inserted = await client.query<{ id: string }>(
    `INSERT INTO ${s}.messages (id, seq, queue, state, blocked, priority, run_at, payload, headers, key, dedupe_id,
       max_attempts, backoff, lease, sent_at)
     SELECT u.id, nextval('${s}.messages_seq'), u.queue, 0,
            u.key IS NOT NULL AND (u.first < u.ord OR EXISTS (SELECT 1 FROM ${s}.messages x
              WHERE x.queue = u.queue AND x.key = u.key AND x.state <= 1)),
            u.priority, u.run_at, u.payload, u.headers, u.key, u.dedupe_id, u.max_attempts, u.backoff, u.lease, $12
       FROM (SELECT t.*, min(t.ord) OVER (PARTITION BY t.queue, t.key) AS first
               FROM unnest($1::text[], $2::text[], $3::int[], $4::int8[], $5::text[], $6::text[], $7::text[],
                           $8::text[], $9::int[], $10::text[], $11::int[]) WITH ORDINALITY
                    AS t(id, queue, priority, run_at, payload, headers, key, dedupe_id, max_attempts, backoff, lease, ord)
              ORDER BY t.ord) u
      ORDER BY u.ord
     ON CONFLICT (queue, dedupe_id) WHERE dedupe_id IS NOT NULL DO NOTHING
     RETURNING id`,
    [...messageColumns(messages), now],
  );
  const created = new Set(inserted.rows.map((r) => r.id));
  const out: SendOutcome[] = new Array(messages.length);
  const missing: NewMessage[] = [];
  for (let i = 0; i < messages.length; i++) {
    const m = messages[i] as NewMessage;
    if (created.has(m.id)) {
      out[i] = { id: m.id, deduplicated: false };
      events.push({ type: 'sent', queue: m.queue, id: m.id, at: now, runAt: m.runAt });
    } else missing.push(m);
  }
  if (missing.length === 0) return out;
  const existing = await client.query<{ id: string; queue: string; dedupe_id: string }>(
    `SELECT m.id, m.queue, m.dedupe_id FROM ${s}.messages m
       JOIN unnest($1::text[], $2::text[]) AS d(queue, dedupe_id) ON m.queue = d.queue AND m.dedupe_id = d.dedupe_id`,
    [missing.map((m) => m.queue), missing.map((m) => m.dedupeId)],
  );
  const byDedupe = new Map(existing.rows.map((r) => [`${r.queue}\u0000${r.dedupe_id}`, r.id]));
  for (let i = 0; i < messages.length; i++) {
    if (out[i]) continue;
    const m = messages[i] as NewMessage;
    const id = m.dedupeId === null ? undefined : byDedupe.get(`${m.queue}\u0000${m.dedupeId}`);
    if (id === undefined) throw retryable('a deduplicating message vanished during the send');
    out[i] = { id, deduplicated: true };
  }
  // A deduplicated first message of a key leaves the batch's later ones blocked behind nothing.
  const dedupedKeys = distinctKeys(missing);
  if (dedupedKeys.length) await unblockNext(client, s, dedupedKeys);
  return out;
}

interface SettledRow {
  id: string;
  queue: string;
  key: string | null;
  state: number;
  attempts: number;
}

function finishedKeys(rows: SettledRow[]): QueueKey[] {
  return distinctKeys(rows.filter((r) => r.state >= COMPLETED));
}

/** After rows finished: under their keys' locks, the next message of each key becomes deliverable. */
export async function releaseKeys(client: pg.ClientBase, ctx: Ctx, rows: SettledRow[]): Promise<void> {
  const keys = finishedKeys(rows);
  if (keys.length === 0) return;
  await lockKeys(client, ctx.s, keys);
  await unblockNext(client, ctx.s, keys);
}

/** Settles leases that ran out (of `ids`, or any, up to 1000): redelivered at once, or dead/cancelled. */
export async function expire(
  client: pg.ClientBase,
  ctx: Ctx,
  now: number,
  events: PendingEvent[],
  queue: string | null,
): Promise<number> {
  const { s } = ctx;
  const e = effective(s);
  const r = await client.query<SettledRow>(
    `WITH x AS (SELECT m.id, m.cancel_requested, m.attempts >= ${e.maxAttempts} AS used_up, ${e.retention} AS retention
                  FROM ${s}.messages m
                 WHERE m.state = 1 AND m.lease_until <= $1 AND ($2::text IS NULL OR m.queue = $2)
                 ORDER BY m.lease_until LIMIT 1000 FOR UPDATE SKIP LOCKED)
     UPDATE ${s}.messages m
        SET state = CASE WHEN x.cancel_requested THEN 4 WHEN x.used_up THEN 3 ELSE 0 END,
            run_at = CASE WHEN x.cancel_requested OR x.used_up THEN m.run_at ELSE $1 END,
            finished_at = CASE WHEN x.cancel_requested OR x.used_up THEN $1 END,
            purge_at = CASE WHEN x.cancel_requested OR x.used_up THEN $1 + x.retention END,
            error = $3, receipt = NULL, lease_until = NULL, blocked = false
       FROM x WHERE m.id = x.id
     RETURNING m.id, m.queue, m.key, m.state, m.attempts`,
    [now, queue, LEASE_EXPIRED],
  );
  if (r.rows.length === 0) return 0;
  const error = JSON.parse(LEASE_EXPIRED) as unknown;
  for (const row of r.rows) {
    const base = { queue: row.queue, id: row.id, at: now, attempt: row.attempts, error };
    if (row.state === QUEUED) events.push({ ...base, type: 'retrying', runAt: now });
    else events.push({ ...base, type: row.state === DEAD ? 'dead' : 'cancelled' });
  }
  await releaseKeys(client, ctx, r.rows);
  return r.rows.length;
}

/** Completes leased messages; each item carries its own `now` so concurrent calls can share a statement. */
export async function completeRows(
  client: pg.ClientBase,
  ctx: Ctx,
  items: { id: string; receipt: string; result: string | null; now: number }[],
  events: PendingEvent[],
): Promise<(SettledRow & { ord: string })[]> {
  const { s } = ctx;
  const e = effective(s);
  const r = await client.query<SettledRow & { ord: string }>(
    `UPDATE ${s}.messages m
        SET state = CASE WHEN m.cancel_requested THEN 4 ELSE 2 END, result = i.result, finished_at = i.now,
            purge_at = i.now + ${e.retention}, receipt = NULL, lease_until = NULL, blocked = false
       FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[]) WITH ORDINALITY AS i(id, receipt, result, now, ord)
      WHERE m.id = i.id AND m.receipt = i.receipt AND m.state = 1 AND m.lease_until > i.now
     RETURNING i.ord, m.id, m.queue, m.key, m.state, m.attempts`,
    [items.map((i) => i.id), items.map((i) => i.receipt), items.map((i) => i.result), items.map((i) => i.now)],
  );
  const rows = r.rows.sort((a, b) => Number(a.ord) - Number(b.ord));
  for (const row of rows) {
    const item = items[Number(row.ord) - 1] as { result: string | null; now: number };
    const at = item.now;
    if (row.state === COMPLETED) {
      events.push({
        type: 'completed',
        queue: row.queue,
        id: row.id,
        at,
        attempt: row.attempts,
        result: item.result === null ? null : JSON.parse(item.result),
      });
    } else events.push({ type: 'cancelled', queue: row.queue, id: row.id, at, attempt: row.attempts });
  }
  await releaseKeys(client, ctx, rows);
  return rows;
}

interface LeasedRow extends SettledRow {
  cancel_requested: boolean;
  lease_until: string;
  max_attempts: number;
  backoff: string | null;
  q_backoff: QueueSettings['backoff'] | null;
}

/**
 * Ends failed attempts: retried after a backoff, or dead, or cancelled when flagged. Each item carries its own
 * time, so fails from separate calls can share the transaction.
 */
export async function failRows(
  client: pg.ClientBase,
  ctx: Ctx,
  context: StoreContext,
  items: (Failure & { now: number })[],
  events: PendingEvent[],
): Promise<(number | null)[]> {
  const { s } = ctx;
  const e = effective(s);
  const r = await client.query<LeasedRow>(
    `SELECT m.id, m.queue, m.key, m.state, m.attempts, m.cancel_requested, m.backoff, m.receipt, m.lease_until,
            ${e.maxAttempts} AS max_attempts,
            (SELECT q.settings->'backoff' FROM ${s}.queues q WHERE q.name = m.queue) AS q_backoff
       FROM ${s}.messages m
      WHERE m.id = ANY($1::text[]) AND m.state = 1
      ORDER BY m.id FOR UPDATE`,
    [items.map((i) => i.id)],
  );
  const leased = new Map(r.rows.map((row) => [`${row.id}\u0000${(row as { receipt?: string }).receipt}`, row]));
  const out: (number | null)[] = new Array(items.length).fill(null);
  const updates: { id: string; state: number; runAt: number | null; error: string; now: number; row: LeasedRow }[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as Failure & { now: number };
    const now = item.now;
    const row = leased.get(`${item.id}\u0000${item.receipt}`);
    if (!row || Number(row.lease_until) <= now) continue;
    leased.delete(`${item.id}\u0000${item.receipt}`);
    const error = JSON.parse(item.error) as unknown;
    const base = { queue: row.queue, id: row.id, at: now, attempt: row.attempts, error };
    let state: number;
    let runAt: number | null = null;
    if (row.cancel_requested) {
      state = CANCELLED;
      events.push({ ...base, type: 'cancelled' });
    } else if (!item.retry || row.attempts >= row.max_attempts) {
      state = DEAD;
      events.push({ ...base, type: 'dead' });
    } else {
      state = QUEUED;
      const backoff: QueueSettings['backoff'] = row.backoff
        ? (JSON.parse(row.backoff) as QueueSettings['backoff'])
        : { ...DEFAULT_SETTINGS.backoff, ...(row.q_backoff ?? {}) };
      runAt = now + (item.delay ?? context.retryDelay(row.attempts, backoff));
      events.push({ ...base, type: 'retrying', runAt });
    }
    out[i] = state;
    updates.push({ id: row.id, state, runAt, error: item.error, now, row: { ...row, state } });
  }
  if (updates.length === 0) return out;
  await client.query(
    `UPDATE ${s}.messages m
        SET state = u.state, run_at = coalesce(u.run_at, m.run_at), error = u.error,
            finished_at = CASE WHEN u.state >= 2 THEN u.now END,
            purge_at = CASE WHEN u.state >= 2 THEN u.now + ${e.retention} END,
            receipt = NULL, lease_until = NULL, blocked = false
       FROM unnest($1::text[], $2::int[], $3::int8[], $4::text[], $5::int8[]) AS u(id, state, run_at, error, now)
      WHERE m.id = u.id`,
    [
      updates.map((u) => u.id),
      updates.map((u) => u.state),
      updates.map((u) => u.runAt),
      updates.map((u) => u.error),
      updates.map((u) => u.now),
    ],
  );
  await releaseKeys(
    client,
    ctx,
    updates.map((u) => u.row),
  );
  return out;
}

/** Puts leased messages back without counting the attempt (a cancel requested meanwhile makes them cancelled). */
export async function releaseRows(
  client: pg.ClientBase,
  ctx: Ctx,
  items: { id: string; receipt: string }[],
  now: number,
  events: PendingEvent[],
): Promise<(number | null)[]> {
  const { s } = ctx;
  const e = effective(s);
  const r = await client.query<SettledRow & { receipt: string; cancel_requested: boolean }>(
    `SELECT m.id, m.queue, m.key, m.state, m.attempts, m.receipt, m.cancel_requested FROM ${s}.messages m
      WHERE m.id = ANY($1::text[]) AND m.state = 1 AND m.lease_until > $2 ORDER BY m.id FOR UPDATE`,
    [items.map((i) => i.id), now],
  );
  const leased = new Map(r.rows.map((row) => [`${row.id}\u0000${row.receipt}`, row]));
  const out: (number | null)[] = new Array(items.length).fill(null);
  const cancelled: SettledRow[] = [];
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as { id: string; receipt: string };
    const row = leased.get(`${item.id}\u0000${item.receipt}`);
    if (!row) continue;
    leased.delete(`${item.id}\u0000${item.receipt}`);
    if (row.cancel_requested) {
      await client.query(
        `UPDATE ${s}.messages m SET state = 4, finished_at = $2, purge_at = $2 + ${e.retention}, receipt = NULL,
                lease_until = NULL, blocked = false WHERE m.id = $1`,
        [row.id, now],
      );
      events.push({ type: 'cancelled', queue: row.queue, id: row.id, at: now, attempt: row.attempts });
      cancelled.push({ ...row, state: CANCELLED });
      out[i] = CANCELLED;
    } else {
      await client.query(
        `UPDATE ${s}.messages SET state = 0, attempts = attempts - 1, run_at = $2, receipt = NULL, lease_until = NULL
          WHERE id = $1`,
        [row.id, now],
      );
      events.push({ type: 'retrying', queue: row.queue, id: row.id, at: now, attempt: row.attempts - 1, runAt: now });
      out[i] = QUEUED;
    }
  }
  await releaseKeys(client, ctx, cancelled);
  return out;
}
