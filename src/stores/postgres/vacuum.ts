/**
 * Vacuum of the hot tables by Ferry itself. Every claim and ack leaves a dead row version (state is indexed,
 * so these updates cannot be HOT), and retention deletes whole rows; autovacuum may be off, or lag far behind
 * on a big table (its default threshold is 20% of the table). So at most every `interval` ms, one process
 * vacuums `messages` and `events` once their dead tuples pass a threshold. The turn is taken by moving a
 * time in `meta` forward with one UPDATE (not a session advisory lock, which a pooler in transaction mode
 * would leave behind on some server connection), so across processes checks are `interval` apart.
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
      const now = Date.now();
      const got = await client.query(
        `INSERT INTO ${this.s}.meta AS m (key, value) VALUES ('vacuum_at', $1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value WHERE m.value::bigint <= $2
         RETURNING value`,
        [String(now), now - this.options.interval],
      );
      if (got.rowCount === 0) return;
      await client.query('SELECT pg_stat_clear_snapshot()');
      const r = await client.query<{ relname: string; dead: string; live: string }>(
        `SELECT relname, n_dead_tup AS dead, n_live_tup AS live FROM pg_stat_user_tables
          WHERE schemaname = $1 AND relname IN ('messages', 'events', 'event_inbox')`,
        [this.schema],
      );
      for (const row of r.rows) {
        const dead = Number(row.dead);
        if (dead >= this.options.minDead && dead >= Number(row.live) / 10) {
          // relname is one of the three names the query filtered on.
          await client.query(`VACUUM ${this.s}.${row.relname}`);
        }
      }
    } catch (error) {
      // Not the owner, or the server went away: housekeeping only, the next check tries again.
      if (isConnectionError(error)) broken = error as Error;
    } finally {
      client.release(broken);
    }
  }
}
