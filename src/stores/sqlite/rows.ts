/** Row ↔ record conversion: the shapes SQLite answers and the records the engine reads. */
import { STATE_NAMES } from '../../store/constants.ts';
import type { MessageRecord, ScheduleRecord, StoredState } from '../../store/store.ts';

/** A messages row as SELECT * returns it. */
export interface Row {
  seq: number;
  id: string;
  queue: string;
  state: number;
  blocked: number;
  priority: number;
  run_at: number;
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
  deadline: number | null;
  receipt: string | null;
  lease_until: number | null;
  cancel_requested: number;
  sent_at: number;
  started_at: number | null;
  finished_at: number | null;
  parent_id: string | null;
  children_left: number;
  ignore_child_failures: number;
}

export interface ScheduleRow {
  name: string;
  cron: string;
  tz: string;
  queue: string;
  payload: string;
  options: string;
  next_at: number;
  last_at: number | null;
}

/** `row` as a record; `maxAttempts` is the effective one (the message's own, else its queue's). */
export function toRecord(row: Row, maxAttempts: number): MessageRecord {
  return {
    id: row.id,
    queue: row.queue,
    state: STATE_NAMES[row.state] as StoredState,
    payload: row.payload,
    result: row.result,
    error: row.error,
    attempts: row.attempts,
    maxAttempts,
    priority: row.priority,
    key: row.key,
    dedupeId: row.dedupe_id,
    progress: row.progress,
    headers: row.headers,
    sentAt: row.sent_at,
    runAt: row.run_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    leaseUntil: row.lease_until,
    cancelRequested: row.cancel_requested === 1,
    parentId: row.parent_id,
  };
}

export function toSchedule(row: ScheduleRow): ScheduleRecord {
  return {
    name: row.name,
    cron: row.cron,
    tz: row.tz,
    queue: row.queue,
    payload: row.payload,
    options: row.options,
    nextAt: row.next_at,
    lastAt: row.last_at,
  };
}
