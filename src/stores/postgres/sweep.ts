/**
 * Housekeeping: one `sweep` function call (functions/sweep.sql), bounded; the caller repeats while it does work.
 * `expire` settles one queue's expired leases (an attempt's deadline passing, noticed by a worker).
 */
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import type { Database } from './connection.ts';
import type { EventLog } from './events.ts';
import { iso } from './rows.ts';

export async function sweep(
  db: Database,
  log: EventLog,
  now: number,
  eventRetention: number,
): Promise<{ expired: number; removed: number }> {
  const row = await db.call<{ expired: number; removed: number; data: string | null }>(
    `SELECT expired, removed, data FROM ${db.s}.sweep($1::int8, $2::text, $3::int8, $4::int, $5::int8, $6::text)`,
    [now, iso(now), now - eventRetention, DEFAULT_SETTINGS.maxAttempts, DEFAULT_SETTINGS.retention, log.origin],
  );
  log.committed(row.data);
  return { expired: row.expired, removed: row.removed };
}

export async function expire(db: Database, log: EventLog, queue: string, now: number): Promise<number> {
  const row = await db.call<{ n: number; data: string | null }>(
    `SELECT n, data FROM ${db.s}.expire_queue($1::text, $2::int8, $3::text, $4::int, $5::text)`,
    [queue, now, iso(now), DEFAULT_SETTINGS.maxAttempts, log.origin],
  );
  log.committed(row.data);
  return row.n;
}
