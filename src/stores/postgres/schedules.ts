/** Cron schedules: stored rows; firing is one transaction per sweep, due rows locked so each tick sends once. */
import type pg from 'pg';
import type { NewMessage, PendingEvent, ScheduleRecord } from '../../store/store.ts';
import { query } from './connection.ts';
import { type Ctx, ensureQueues, insertMessages } from './write.ts';

interface ScheduleRow {
  name: string;
  cron: string;
  tz: string;
  queue: string;
  payload: string;
  options: string;
  next_at: string;
  last_at: string | null;
}

const toRecord = (r: ScheduleRow): ScheduleRecord => ({
  name: r.name,
  cron: r.cron,
  tz: r.tz,
  queue: r.queue,
  payload: r.payload,
  options: r.options,
  nextAt: Number(r.next_at),
  lastAt: r.last_at === null ? null : Number(r.last_at),
});

export async function putSchedule(pool: pg.Pool, ctx: Ctx, s: ScheduleRecord): Promise<void> {
  await query(
    pool,
    `INSERT INTO ${ctx.s}.schedules (name, cron, tz, queue, payload, options, next_at, last_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, tz = excluded.tz, queue = excluded.queue,
       payload = excluded.payload, options = excluded.options, next_at = excluded.next_at, last_at = excluded.last_at`,
    [s.name, s.cron, s.tz, s.queue, s.payload, s.options, s.nextAt, s.lastAt],
  );
}

export async function deleteSchedule(pool: pg.Pool, ctx: Ctx, name: string): Promise<boolean> {
  const r = await query(pool, `DELETE FROM ${ctx.s}.schedules WHERE name = $1`, [name]);
  return (r.rowCount ?? 0) > 0;
}

export async function listSchedules(pool: pg.Pool, ctx: Ctx): Promise<ScheduleRecord[]> {
  const r = await query<ScheduleRow>(pool, `SELECT * FROM ${ctx.s}.schedules ORDER BY name`);
  return r.rows.map(toRecord);
}

/** Inside a transaction: sends one message per due schedule and moves it to its next tick. */
export async function fireSchedules(
  client: pg.ClientBase,
  ctx: Ctx,
  now: number,
  next: (schedule: ScheduleRecord, after: number) => number,
  message: (schedule: ScheduleRecord, tick: number) => NewMessage,
  events: PendingEvent[],
): Promise<number> {
  // Another process firing the same rows holds their locks: skipping them is what makes a tick send once.
  const r = await client.query<ScheduleRow>(
    `SELECT * FROM ${ctx.s}.schedules WHERE next_at <= $1 ORDER BY next_at LIMIT 1000 FOR UPDATE SKIP LOCKED`,
    [now],
  );
  for (const row of r.rows) {
    const schedule = toRecord(row);
    const m = message(schedule, schedule.nextAt);
    await ensureQueues(client, ctx, [m.queue]);
    await insertMessages(client, ctx, [m], now, events);
    await client.query(`UPDATE ${ctx.s}.schedules SET next_at = $2, last_at = $3 WHERE name = $1`, [
      schedule.name,
      next(schedule, now),
      schedule.nextAt,
    ]);
  }
  return r.rows.length;
}
