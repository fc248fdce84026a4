/** Cron schedules: put, delete, list, and firing the due ones (each tick sends once across processes). */
import type Database from 'better-sqlite3';
import { SWEEP_BATCH } from '../../store/constants.ts';
import type { NewMessage, PendingEvent, ScheduleRecord } from '../../store/store.ts';
import type { Queues } from './admin.ts';
import { preparer, type Stmt } from './connection.ts';
import { type ScheduleRow, toSchedule } from './rows.ts';
import type { Send } from './send.ts';

export class Schedules {
  private readonly put: Stmt<unknown>;
  private readonly remove: Stmt<unknown>;
  private readonly all: Stmt<ScheduleRow>;
  private readonly due: Stmt<ScheduleRow>;
  private readonly fired: Stmt<unknown>;

  constructor(
    db: Database.Database,
    private readonly queues: Queues,
    private readonly sender: Send,
  ) {
    const s = preparer(db);
    this.put = s(
      `INSERT OR REPLACE INTO schedules (name, cron, tz, queue, payload, options, next_at, last_at)
       VALUES (@name, @cron, @tz, @queue, @payload, @options, @nextAt, @lastAt)`,
    );
    this.remove = s('DELETE FROM schedules WHERE name = ?');
    this.all = s('SELECT * FROM schedules ORDER BY name');
    this.due = s(`SELECT * FROM schedules WHERE next_at <= ? ORDER BY next_at LIMIT ${SWEEP_BATCH}`);
    this.fired = s('UPDATE schedules SET next_at = ?, last_at = ? WHERE name = ?');
  }

  putSchedule(schedule: ScheduleRecord): void {
    this.put.run(schedule);
  }

  deleteSchedule(name: string): boolean {
    return this.remove.run(name).changes > 0;
  }

  list(): ScheduleRecord[] {
    return this.all.all().map(toSchedule);
  }

  fire(
    now: number,
    next: (schedule: ScheduleRecord, after: number) => number,
    message: (schedule: ScheduleRecord, tick: number) => NewMessage,
    events: PendingEvent[],
  ): number {
    const due = this.due.all(now).map(toSchedule);
    for (const schedule of due) {
      const m = message(schedule, schedule.nextAt);
      this.queues.ensure(m.queue);
      this.sender.insert(m, now, events);
      this.fired.run(next(schedule, now), schedule.nextAt, schedule.name);
    }
    return due.length;
  }
}
