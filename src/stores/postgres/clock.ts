/**
 * Time from the database: the engine's clock is this process's clock corrected by its measured offset to the
 * PostgreSQL server's clock, so processes on machines whose clocks disagree still agree on lease ends, due
 * times and retention. The offset is measured at open and again every minute (clocks drift).
 */
import type pg from 'pg';
import type { Clock } from '../../engine/clock.ts';
import { unavailable } from './connection.ts';

const REFRESH = 60_000;

/**
 * How far the database clock is ahead of this process's clock (ms, negative when behind): of `samples`
 * round trips, the one with the shortest round trip, read at its midpoint.
 */
export async function databaseClockOffset(pool: pg.Pool, samples = 3): Promise<number> {
  let best = { rtt: Number.POSITIVE_INFINITY, offset: 0 };
  for (let i = 0; i < samples; i++) {
    const before = Date.now();
    const r = await pool.query<{ now: number }>('SELECT (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now');
    const after = Date.now();
    if (after - before < best.rtt) {
      best = { rtt: after - before, offset: Math.round(Number(r.rows[0]?.now) - (before + after) / 2) };
    }
  }
  return best.offset;
}

export class DatabaseClock implements Clock {
  private timer: ReturnType<typeof setInterval> | undefined;

  private constructor(
    private offset: number,
    pool: pg.Pool,
    isOpen: () => boolean,
  ) {
    this.timer = setInterval(() => {
      if (!isOpen()) {
        clearInterval(this.timer);
        return;
      }
      databaseClockOffset(pool).then(
        (offset) => {
          this.offset = offset;
        },
        () => {}, // Unreachable for now: keep the last offset.
      );
    }, REFRESH);
    this.timer.unref();
  }

  static async create(pool: pg.Pool, isOpen: () => boolean): Promise<DatabaseClock> {
    try {
      return new DatabaseClock(await databaseClockOffset(pool), pool, isOpen);
    } catch (error) {
      throw unavailable(error);
    }
  }

  /** The current offset to the database clock (ms). */
  get skew(): number {
    return this.offset;
  }

  now(): number {
    return Date.now() + this.offset;
  }

  setTimeout(callback: () => void, ms: number): ReturnType<typeof setTimeout> {
    return setTimeout(callback, ms);
  }

  clearTimeout(handle: unknown): void {
    clearTimeout(handle as ReturnType<typeof setTimeout>);
  }
}
