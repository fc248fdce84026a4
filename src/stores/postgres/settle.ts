/**
 * Settling deliveries other than acks (those share the worker's step, claim.ts): fail, release, extend,
 * progress, each a function of functions/settle.sql. Fails of one turn share a transaction: the leases are
 * read first so the engine's backoff (`retryDelay`, with its jitter) can say when each would run again; the
 * `fail_items` function then decides, under the row locks, what each becomes.
 */
import type { QueueSettings } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import type { DeliveryRefItem, Failure, Settled, StoreContext } from '../../store/store.ts';
import type { Database } from './connection.ts';
import type { EventLog } from './events.ts';
import { iso, settledStates } from './rows.ts';
import { SameTick, settleEach } from './tick.ts';

interface FailCall {
  items: (Failure & { now: number })[];
  size: number;
  resolve: (states: Settled[]) => void;
  reject: (error: unknown) => void;
}

interface LeaseRow {
  id: string;
  receipt: string;
  attempts: number;
  backoff: string | null;
  q_backoff: Partial<QueueSettings['backoff']> | null;
}

interface SettleRow {
  data: string | null;
  ords: number[] | null;
  states: number[] | null;
}

export class Settler {
  private readonly fails = new SameTick<FailCall>(
    (calls) => void this.runFails(calls),
    (call) => call.items.map((i) => i.id),
  );

  constructor(
    private readonly db: Database,
    private readonly log: EventLog,
    private readonly context: () => StoreContext,
  ) {}

  fail(items: Failure[], now: number): Promise<Settled[]> {
    return new Promise((resolve, reject) => {
      this.fails.add({ items: items.map((i) => ({ ...i, now })), size: items.length, resolve, reject });
    });
  }

  private async runFails(calls: FailCall[]): Promise<void> {
    const items = calls.flatMap((c) => c.items);
    const { s } = this.db;
    try {
      const row = await this.db.transaction(async (client) => {
        const leases = await client.query<LeaseRow>(
          `SELECT m.id, m.receipt, m.attempts, m.backoff,
                  (SELECT q.settings->'backoff' FROM ${s}.queues q WHERE q.name = m.queue) AS q_backoff
             FROM ${s}.messages m
            WHERE m.id = ANY($1::text[]) AND m.state = 1
            ORDER BY m.id FOR UPDATE`,
          [items.map((i) => i.id)],
        );
        const byId = new Map(leases.rows.map((r) => [r.id, r]));
        const runAts = items.map((item) => {
          const lease = byId.get(item.id);
          if (!lease || lease.receipt !== item.receipt) return null;
          const backoff: QueueSettings['backoff'] = lease.backoff
            ? (JSON.parse(lease.backoff) as QueueSettings['backoff'])
            : { ...DEFAULT_SETTINGS.backoff, ...(lease.q_backoff ?? {}) };
          return item.now + (item.delay ?? this.context().retryDelay(lease.attempts, backoff));
        });
        const r = await client.query<SettleRow>(
          `SELECT data, ords, states FROM ${s}.fail_items($1::text[], $2::text[], $3::text[], $4::boolean[],
             $5::int8[], $6::int8[], $7::text[], $8::int, $9::text)`,
          [
            items.map((i) => i.id),
            items.map((i) => i.receipt),
            items.map((i) => i.error),
            items.map((i) => i.retry),
            runAts,
            items.map((i) => i.now),
            items.map((i) => iso(i.now)),
            DEFAULT_SETTINGS.maxAttempts,
            this.log.origin,
          ],
        );
        return r.rows[0] as SettleRow;
      });
      this.log.committed(row.data);
      settleEach(calls, settledStates(items.length, row.ords, row.states));
    } catch (error) {
      for (const call of calls) call.reject(error);
    }
  }

  async release(items: DeliveryRefItem[], now: number): Promise<Settled[]> {
    const row = await this.db.call<SettleRow>(
      `SELECT data, ords, states FROM ${this.db.s}.release_items($1::text[], $2::text[], $3::int8, $4::text, $5::text)`,
      [items.map((i) => i.id), items.map((i) => i.receipt), now, iso(now), this.log.origin],
    );
    this.log.committed(row.data);
    return settledStates(items.length, row.ords, row.states);
  }

  async extend(id: string, receipt: string, lease: number, now: number): Promise<number | null> {
    const row = await this.db.call<{ until: string | null }>(
      `SELECT ${this.db.s}.extend_lease($1, $2, $3, $4) AS until`,
      [id, receipt, now, now + lease],
    );
    return row.until === null ? null : Number(row.until);
  }

  async progress(id: string, receipt: string, value: string, now: number): Promise<boolean> {
    const row = await this.db.call<{ ok: boolean; data: string | null }>(
      `SELECT ok, data FROM ${this.db.s}.progress_item($1, $2, $3, $4, $5, $6)`,
      [id, receipt, value, now, iso(now), this.log.origin],
    );
    this.log.committed(row.data);
    return row.ok;
  }
}
