/** Housekeeping: one `sweep` function call (functions/sweep.sql), bounded; the caller repeats while it does work. */
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
