/**
 * The crash child's journal (see crash-child.ts for its lines) and the ledger the parent keeps across rounds:
 * every send and ack that was ever answered, and every rule broken so far.
 */
import { createHash } from 'node:crypto';

export const ACK_QUEUE = 'crash.recv';
export const WORK_QUEUE = 'crash.work';
export const QUEUES = [ACK_QUEUE, WORK_QUEUE] as const;
/** Short, so messages active at the kill come back to the checker quickly. */
export const CHILD_LEASE = '500ms';

/** A short hash of a payload's JSON: equal markers mean the payload came back intact. */
export function marker(payload: unknown): string {
  return createHash('sha256').update(JSON.stringify(payload)).digest('hex').slice(0, 16);
}

export interface SentEntry {
  queue: string;
  marker: string;
  round: number;
}

export interface AckedEntry {
  by: string;
  marker: string;
  round: number;
}

/** What one round's journal held. */
export interface RoundJournal {
  ready: boolean;
  sends: number;
  acks: number;
  deliveries: number;
  lost: number;
  /** Ids first journaled as sent in this round. */
  sentIds: string[];
  /** Ids journaled as acked in this round. */
  ackedIds: string[];
}

export class Ledger {
  readonly sent = new Map<string, SentEntry>();
  readonly acked = new Map<string, AckedEntry>();
  readonly problems: string[] = [];

  /** Applies one round's journal in order; rules broken go to `problems`. */
  apply(text: string, round: number): RoundJournal {
    const lines = text.split('\n');
    // A line cut short by the kill has no newline: it was never fully written, so it was never relied on.
    lines.pop();
    const out: RoundJournal = { ready: false, sends: 0, acks: 0, deliveries: 0, lost: 0, sentIds: [], ackedIds: [] };
    const delivered: { id: string; marker: string }[] = [];
    for (const line of lines) {
      const [kind, a, b, c] = line.split(' ');
      if (kind === 'ready') {
        out.ready = true;
      } else if (kind === 'sent' && a && b && c) {
        if (this.sent.has(b)) this.problems.push(`round ${round}: send answered id ${b} twice`);
        this.sent.set(b, { queue: a, marker: c, round });
        out.sentIds.push(b);
        out.sends++;
      } else if (kind === 'got' && a && b && c) {
        const ack = this.acked.get(a);
        if (ack) {
          this.problems.push(
            `round ${round}: message ${a} delivered again (attempt ${b}) after its ack was answered in round ${ack.round}`,
          );
        }
        delivered.push({ id: a, marker: c });
        out.deliveries++;
      } else if (kind === 'acked' && a && b && c) {
        if (this.acked.has(a)) this.problems.push(`round ${round}: message ${a} acked twice`);
        this.acked.set(a, { by: b, marker: c, round });
        out.ackedIds.push(a);
        out.acks++;
      } else if (kind === 'lost' && a) {
        out.lost++;
      } else {
        this.problems.push(`round ${round}: unreadable journal line ${JSON.stringify(line)}`);
      }
    }
    // Sends are journaled after their answer, so a delivery may precede its `sent` line: compare at the end.
    for (const d of delivered) {
      const s = this.sent.get(d.id);
      if (s && s.marker !== d.marker) {
        this.problems.push(`round ${round}: message ${d.id} delivered with payload ${d.marker}, sent as ${s.marker}`);
      }
    }
    return out;
  }
}
