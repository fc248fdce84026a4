/**
 * Cron schedules: stored rows. Firing is one transaction per sweep: due rows are locked (skipping those
 * another process is firing), which is what makes each tick send once; each tick's message goes through the
 * `send` function like any other, and the schedule moves to its next tick.
 */
import type { NewMessage, ScheduleRecord } from '../../store/store.ts';
import type { Database } from './connection.ts';
import type { EventLog } from './events.ts';
import type { Sender } from './send.ts';

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

export async function putSchedule(db: Database, s: ScheduleRecord): Promise<void> {
  await db.call(
    `INSERT INTO ${db.s}.schedules (name, cron, tz, queue, payload, options, next_at, last_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (name) DO UPDATE SET cron = excluded.cron, tz = excluded.tz, queue = excluded.queue,
       payload = excluded.payload, options = excluded.options, next_at = excluded.next_at, last_at = excluded.last_at`,
    [s.name, s.cron, s.tz, s.queue, s.payload, s.options, s.nextAt, s.lastAt],
  );
}

export async function deleteSchedule(db: Database, name: string): Promise<boolean> {
  const r = await db.query(`DELETE FROM ${db.s}.schedules WHERE name = $1`, [name]);
  return (r.rowCount ?? 0) > 0;
}

export async function listSchedules(db: Database): Promise<ScheduleRecord[]> {
  const r = await db.query<ScheduleRow>(`SELECT * FROM ${db.s}.schedules ORDER BY name`);
  return r.rows.map(toRecord);
}

export async function fireSchedules(
  db: Database,
  log: EventLog,
  sender: Sender,
  now: number,
  next: (schedule: ScheduleRecord, after: number) => number,
  message: (schedule: ScheduleRecord, tick: number) => NewMessage,
): Promise<number> {
  const staged: (string | null)[] = [];
  const fired = await db.transaction(async (client) => {
    staged.length = 0;
    const r = await client.query<ScheduleRow>(
      `SELECT * FROM ${db.s}.schedules WHERE next_at <= $1 ORDER BY next_at LIMIT 1000 FOR UPDATE SKIP LOCKED`,
      [now],
    );
    for (const row of r.rows) {
      const schedule = toRecord(row);
      const m = message(schedule, schedule.nextAt);
      staged.push((await sender.insertIn(client, [m], now)).data);
      await client.query(`UPDATE ${db.s}.schedules SET next_at = $2, last_at = $3 WHERE name = $1`, [
        schedule.name,
        next(schedule, now),
        schedule.nextAt,
      ]);
    }
    return r.rows.length;
  });
  for (const data of staged) log.committed(data);
  return fired;
}
