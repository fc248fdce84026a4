/**
 * What the parent checks after each kill, through the public `Ferry` interface (and `PRAGMA integrity_check`
 * through better-sqlite3 directly): every answered send is there with its payload intact, every answered ack
 * is `completed` with its result, and draining the queues never hands out a message whose ack was answered.
 */
import { isDeepStrictEqual } from 'node:util';
import Database from 'better-sqlite3';
import type { Ferry, MessageInfo, MessageState } from '../../src/index.ts';
import { type Ledger, marker, QUEUES, type RoundJournal } from './journal.ts';

/** `PRAGMA integrity_check` on the file, through a connection of its own. Answers `ok` when sound. */
export function integrityCheck(file: string): string {
  const db = new Database(file, { fileMustExist: true });
  try {
    db.pragma('busy_timeout = 10000');
    const rows = db.pragma('integrity_check') as { integrity_check: string }[];
    return rows.map((r) => r.integrity_check).join('; ');
  } finally {
    db.close();
  }
}

/** Every message of the store's crash queues, by id, read page by page with `list`. */
export async function listAll(ferry: Ferry): Promise<Map<string, MessageInfo>> {
  const all = new Map<string, MessageInfo>();
  for (const queue of QUEUES) {
    let cursor: string | null = null;
    do {
      const page = await ferry.list(queue, { limit: 1000, cursor });
      for (const info of page.messages) all.set(info.id, info);
      cursor = page.cursor;
    } while (cursor !== null);
  }
  return all;
}

export interface Found {
  /** Messages in the store. */
  messages: number;
  /** Messages committed whose answer never reached the journal (in flight at the kill). */
  unjournaled: number;
  states: Partial<Record<MessageState, number>>;
}

/** Checks every send and ack answered so far, in every round, against the store; records problems. */
export async function verifyAnswered(
  ferry: Ferry,
  ledger: Ledger,
  round: number,
  journal: RoundJournal,
): Promise<Found> {
  const problems = ledger.problems;
  const all = await listAll(ferry);
  for (const [id, s] of ledger.sent) {
    const info = all.get(id);
    if (!info) problems.push(`round ${round}: message ${id} (send answered in round ${s.round}) is missing`);
    else if (info.queue !== s.queue)
      problems.push(`round ${round}: message ${id} is in ${info.queue}, sent to ${s.queue}`);
    else if (marker(info.payload) !== s.marker) problems.push(`round ${round}: message ${id} payload changed`);
  }
  for (const [id, a] of ledger.acked) {
    const info = all.get(id);
    if (!info) {
      problems.push(`round ${round}: message ${id} (ack answered in round ${a.round}) is missing`);
    } else if (info.state !== 'completed') {
      problems.push(`round ${round}: message ${id} is ${info.state}, but its ack was answered in round ${a.round}`);
    } else if (!isDeepStrictEqual(info.result, { by: a.by, m: a.marker })) {
      problems.push(
        `round ${round}: message ${id} has result ${JSON.stringify(info.result)}, acked with ${a.by} ${a.marker}`,
      );
    }
  }
  // The same facts through the point lookup, for what this round answered.
  for (const id of journal.sentIds) {
    const info = await ferry.get(id);
    if (!info || marker(info.payload) !== ledger.sent.get(id)?.marker)
      problems.push(`round ${round}: get(${id}) lost the send`);
  }
  for (const id of journal.ackedIds) {
    const info = await ferry.get(id);
    if (info?.state !== 'completed')
      problems.push(`round ${round}: get(${id}) is ${info?.state ?? 'null'} after an answered ack`);
  }

  const found: Found = { messages: all.size, unjournaled: 0, states: {} };
  for (const [id, info] of all) {
    found.states[info.state] = (found.states[info.state] ?? 0) + 1;
    // Sends use maxAttempts 50: a kill mid-lease costs one attempt, never enough to die.
    if (info.state === 'dead') problems.push(`round ${round}: message ${id} is dead: ${JSON.stringify(info.error)}`);
    if (!ledger.sent.has(id)) {
      // Committed, but the kill came before the answer was journaled: from now on it must stay too.
      found.unjournaled++;
      ledger.sent.set(id, { queue: info.queue, marker: marker(info.payload), round });
    }
  }
  return found;
}

export interface Drained {
  /** Deliveries the checker received (and acked). */
  delivered: number;
  /** Of those, how many had been delivered before (active at the kill, or a lease that ran out). */
  redelivered: number;
}

/**
 * Receives and acks everything still open in the crash queues, until none is waiting, delayed or active.
 * Messages active at the kill come back when their short leases run out. An acked message must never come.
 */
export async function drain(ferry: Ferry, ledger: Ledger, round: number, timeoutMs = 15_000): Promise<Drained> {
  const out: Drained = { delivered: 0, redelivered: 0 };
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    let received = 0;
    for (const queue of QUEUES) {
      const deliveries = await ferry.receive(queue, { max: 1000, wait: '25ms', lease: '30s' });
      received += deliveries.length;
      for (const d of deliveries) {
        out.delivered++;
        if (d.attempt > 1) out.redelivered++;
        const ack = ledger.acked.get(d.id);
        if (ack) {
          ledger.problems.push(
            `round ${round}: message ${d.id} delivered again (attempt ${d.attempt}) after its ack was answered in round ${ack.round}`,
          );
        }
        const m = marker(d.payload);
        const s = ledger.sent.get(d.id);
        if (s && s.marker !== m)
          ledger.problems.push(`round ${round}: message ${d.id} delivered with a changed payload`);
      }
      await Promise.all(
        deliveries.map(async (d) => {
          const m = marker(d.payload);
          await ferry.ack(d, { by: 'check', m });
          ledger.acked.set(d.id, { by: 'check', marker: m, round });
        }),
      );
    }
    if (received > 0) continue;
    const open = await Promise.all(QUEUES.map((q) => ferry.stats(q)));
    if (open.every((s) => s.waiting + s.delayed + s.active === 0)) return out;
    if (Date.now() > deadline) {
      ledger.problems.push(`round ${round}: queues still open after ${timeoutMs} ms: ${JSON.stringify(open)}`);
      return out;
    }
  }
}
