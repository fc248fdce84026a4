/** Row shapes and conversions: `pg` returns int8 as strings, so times and seqs pass through Number(). */
import type { QueueSettings } from '../../core/types.ts';
import { DEFAULT_SETTINGS } from '../../core/validate.ts';
import { STATE_NAMES } from '../../store/constants.ts';
import type { MessageRecord, NewMessage, Settled, StoredState } from '../../store/store.ts';

export interface Row {
  seq: string;
  id: string;
  queue: string;
  state: number;
  blocked: boolean;
  priority: number;
  run_at: string;
  payload: string;
  result: string | null;
  error: string | null;
  progress: string | null;
  headers: string | null;
  key: string | null;
  dedupe_id: string | null;
  attempts: number;
  max_attempts: number | null;
  backoff: string | null;
  lease: number | null;
  timeout: number | null;
  deadline: string | null;
  receipt: string | null;
  lease_until: string | null;
  cancel_requested: boolean;
  sent_at: string;
  started_at: string | null;
  finished_at: string | null;
  parent_id: string | null;
  children_left: number;
  ignore_child_failures: boolean;
  /** The queue's maxAttempts setting, joined in. */
  q_max_attempts: number | null;
}

/** A time (epoch ms) as the ISO text events carry. */
export const iso = (ms: number): string => new Date(ms).toISOString();

const num = (v: string | null): number | null => (v === null ? null : Number(v));

export function toRecord(row: Row): MessageRecord {
  return {
    id: row.id,
    queue: row.queue,
    state: STATE_NAMES[row.state] as StoredState,
    payload: row.payload,
    result: row.result,
    error: row.error,
    attempts: row.attempts,
    maxAttempts: row.max_attempts ?? row.q_max_attempts ?? DEFAULT_SETTINGS.maxAttempts,
    priority: row.priority,
    key: row.key,
    dedupeId: row.dedupe_id,
    progress: row.progress,
    headers: row.headers,
    sentAt: Number(row.sent_at),
    runAt: Number(row.run_at),
    startedAt: num(row.started_at),
    finishedAt: num(row.finished_at),
    leaseUntil: num(row.lease_until),
    cancelRequested: row.cancel_requested,
    parentId: row.parent_id,
  };
}

/** SQL selecting a message row (aliased `m`) with its queue's maxAttempts setting. */
export function selectRow(s: string): string {
  return `SELECT m.*, (SELECT (q.settings->>'maxAttempts')::int FROM ${s}.queues q WHERE q.name = m.queue) AS q_max_attempts
    FROM ${s}.messages m`;
}

export function mergeSettings(stored: Partial<QueueSettings> | null, paused: boolean): QueueSettings {
  return {
    ...DEFAULT_SETTINGS,
    ...(stored ?? {}),
    backoff: { ...DEFAULT_SETTINGS.backoff, ...(stored?.backoff ?? {}) },
    paused,
  };
}

/** The answers of a batch of settles: the functions return the 1-based positions that settled and their states. */
export function settledStates(size: number, ords: number[] | null, states: number[] | null): Settled[] {
  const out: Settled[] = new Array(size).fill(null);
  const codes = states ?? [];
  (ords ?? []).forEach((ord, k) => {
    out[ord - 1] = STATE_NAMES[codes[k] as number] ?? null;
  });
  return out;
}

/** The same from a string of one state code per item ('-': not settled), as `step` answers it. */
export function settledCodes(size: number, codes: string | null): Settled[] {
  const out: Settled[] = new Array(size);
  for (let i = 0; i < size; i++) {
    const code = codes === null ? 45 : codes.charCodeAt(i);
    out[i] = code >= 48 && code <= 57 ? (STATE_NAMES[code - 48] ?? null) : null;
  }
  return out;
}

/** A message's backoff as its column stores it (JSON text; null: the queue's). */
export const backoffText = (m: NewMessage): string | null => (m.backoff === null ? null : JSON.stringify(m.backoff));

/** A batch of new messages as the column arrays the `send` function takes (parameters $1–$12). */
export function messageColumns(messages: NewMessage[]): unknown[][] {
  const col = <T>(f: (m: NewMessage) => T) => messages.map(f);
  return [
    col((m) => m.id),
    col((m) => m.queue),
    col((m) => m.priority),
    col((m) => m.runAt),
    col((m) => m.payload),
    col((m) => m.headers),
    col((m) => m.key),
    col((m) => m.dedupeId),
    col((m) => m.maxAttempts),
    col(backoffText),
    col((m) => m.lease),
    col((m) => m.timeout),
  ];
}
