/**
 * Vacuum of the hot tables by Ferry itself. Every claim and ack leaves a dead row version (state is indexed,
 * so these updates cannot be HOT), and retention deletes whole rows; autovacuum may be off, or lag far behind
 * on a big table (its default threshold is 20% of the table). So at most every `interval` ms, one process
 * (elected by a try-lock) vacuums `messages` and `events` once their dead tuples pass a threshold.
 * VACUUM takes no lock that blocks sends, claims or acks; it needs the role that owns the tables (the one
 * that created them).
 */
import type pg from 'pg';
import { isConnectionError } from './connection.ts';

export interface VacuumOptions {
  /** Least time between two checks (ms). */
  interval: number;
  /** Dead tuples that trigger a VACUUM of a table (and at least 10% of its live rows). */
  minDead: number;
}

export class Vacuumer {
  private last = 0;
  private running: Promise<void> | null = null;

  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
    private readonly schema: string,
    private readonly options: VacuumOptions,
  ) {}

  /** Starts a check in the background when one is due; never throws. */
  maybe(): void {
    if (this.running || Date.now() - this.last < this.options.interval) return;
    this.last = Date.now();
    this.running = this.run().finally(() => {
      this.running = null;
    });
  }

  /** Waits for a running check (at close). */
  async idle(): Promise<void> {
    await this.running;
  }

  private async run(): Promise<void> {
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch {
      return;
    }
    let broken: Error | undefined;
    try {
      const got = await client.query<{ ok: boolean }>(
        "SELECT pg_try_advisory_lock(hashtext('ferry.vacuum'), hashtext($1)) AS ok",
        [this.schema],
      );
      if (!got.rows[0]?.ok) return;
      try {
        await client.query('SELECT pg_stat_clear_snapshot()');
        const r = await client.query<{ relname: string; dead: string; live: string }>(
          `SELECT relname, n_dead_tup AS dead, n_live_tup AS live FROM pg_stat_user_tables
            WHERE schemaname = $1 AND relname IN ('messages', 'events')`,
          [this.schema],
        );
        for (const row of r.rows) {
          const dead = Number(row.dead);
          if (dead >= this.options.minDead && dead >= Number(row.live) / 10) {
            await client.query(`VACUUM ${this.s}.${row.relname === 'messages' ? 'messages' : 'events'}`);
          }
        }
      } finally {
        await client.query("SELECT pg_advisory_unlock(hashtext('ferry.vacuum'), hashtext($1))", [this.schema]);
      }
    } catch (error) {
      // Not the owner, or the server went away: housekeeping only, the next check tries again.
      if (isConnectionError(error)) broken = error as Error;
    } finally {
      client.release(broken);
    }
  }
}
