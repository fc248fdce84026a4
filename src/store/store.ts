/**
 * The contract between the engine and a store. It states queue semantics, one batched operation per
 * method; it exposes no connection or transaction type. Every method is atomic: it happens whole or not at
 * all, and its promise resolves only once the change is durable (committed, fsynced where configured).
 *
 * The engine validates and normalizes every input before it reaches a store, resolves defaults it can, and
 * turns records into the public shapes. The store owns everything that must hold across processes: leases
 * and receipts, ordering keys, dedupe, pause, per-queue limits, the event log.
 *
 * Times are epoch milliseconds read from the engine's clock and passed in as `now`, so tests can drive time.
 */
import type { EventType, FerryEvent, MessageState, QueueSettings, QueueStats } from '../core/types.ts';

/** What a store can do; differences between stores are data, not `if (store === …)`. */
export interface StoreCapabilities {
  /** Other processes may change the same data (a PostgreSQL database, a shared SQLite file). */
  readonly shared: boolean;
  /** `send` accepts the caller's own transaction handle. */
  readonly transactionalSend: boolean;
}

/** The store's stored form of a backoff: durations in milliseconds. */
export type BackoffSettings = QueueSettings['backoff'];

/** What was done for committed events already (see `StoreContext.onEvents`). */
export type Woken = 'all' | 'consumers';

/** Given to a store once, at `init`. */
export interface StoreContext {
  /** Delay before attempt `attempt + 1` after attempt `attempt` failed, by the message's backoff. */
  retryDelay(attempt: number, backoff: BackoffSettings): number;
  /**
   * Receives every event the store commits, in seq order: its own as soon as they have seqs, other
   * processes' when it learns of them. `woken`: 'all' when these events were passed to `onCommitted`
   * already; 'consumers' when they are another process's and the store told consumers here of them through
   * `onActivity` (as that process asked), so only result waiters are left to wake.
   */
  onEvents(events: FerryEvent[], woken?: Woken): void;
  /**
   * This process's own events, as soon as their transaction commits and before they have seqs (a store
   * whose log is numbered after commit calls it), so waiters here wake without waiting for the log. In no
   * particular order across calls; wakeups and result waiters only, never event streams. Answers the
   * queues whose new work no consumer waiting here took up: other processes' consumers should hear of them.
   */
  onCommitted?(events: CommittedEvent[]): readonly string[];
  /**
   * Another process changed these queues (sent, retried or finished messages): consumers waiting on them
   * here may try again. A latency hint only; null: any queue.
   */
  onActivity?(queues: readonly string[] | null): void;
}

/** An event without its seq: what `onCommitted` gets. */
export type CommittedEvent = Pick<FerryEvent, 'type' | 'queue' | 'id'> & { runAt?: number };

/** A validated message to insert. JSON fields are already serialized. */
export interface NewMessage {
  id: string;
  queue: string;
  payload: string;
  priority: number;
  key: string | null;
  dedupeId: string | null;
  /** Null: the queue's setting applies when needed. */
  maxAttempts: number | null;
  backoff: BackoffSettings | null;
  lease: number | null;
  /** The attempt timeout (ms); null: the claim's, else the queue's, else none. */
  timeout: number | null;
  headers: string | null;
  runAt: number;
}

/**
 * A node of a flow, in pre-order (every parent before its children). `parent`: the index of its parent in the
 * same array, null for the root; `children`: how many children it has (pending while any is unfinished).
 */
export interface FlowMessage extends NewMessage {
  parent: number | null;
  children: number;
  /** The parent's `children: 'ignore-failures'`: it waits for every child, whatever its end. */
  ignoreFailures: boolean;
}

export interface SendOutcome {
  id: string;
  deduplicated: boolean;
}

/** The stored states; `queued` is `waiting` or `delayed` depending on `runAt`. */
export type StoredState = 'queued' | 'active' | 'completed' | 'dead' | 'cancelled' | 'pending';

/** A message as stored. JSON fields are serialized text. */
export interface MessageRecord {
  id: string;
  queue: string;
  state: StoredState;
  payload: string;
  result: string | null;
  error: string | null;
  attempts: number;
  /** Effective: the message's own, else the queue's. */
  maxAttempts: number;
  priority: number;
  key: string | null;
  dedupeId: string | null;
  progress: string | null;
  headers: string | null;
  sentAt: number;
  runAt: number;
  startedAt: number | null;
  finishedAt: number | null;
  leaseUntil: number | null;
  cancelRequested: boolean;
  /** The flow parent, or null. */
  parentId: string | null;
}

/** One delivery made by `claim`. */
export interface Claimed {
  id: string;
  queue: string;
  /** The payload, parsed (a store may have it parsed along with the rest of its answer). */
  payload: unknown;
  attempt: number;
  receipt: string;
  priority: number;
  key: string | null;
  /** The headers, parsed; null when the message has none. */
  headers: Record<string, string> | null;
  sentAt: number;
  leaseUntil: number;
  /** The lease length used, so a worker can renew by the same amount. */
  lease: number;
  /** When this attempt times out (epoch ms), or null; `leaseUntil` never passes it. */
  deadline: number | null;
}

export interface Completion {
  id: string;
  receipt: string;
  result: string | null;
}

export interface DeliveryRefItem {
  id: string;
  receipt: string;
}

export interface Failure {
  id: string;
  receipt: string;
  error: string;
  /** False: dead at once. */
  retry: boolean;
  /** Instead of the backoff. */
  delay: number | null;
}

/** How one settle went: the state the message is now in, or null when the receipt was stale. */
export type Settled = StoredState | null;

export interface ListQuery {
  state: MessageState | null;
  limit: number;
  /** Opaque position from a previous page. */
  cursor: string | null;
}

export interface RecordPage {
  records: MessageRecord[];
  cursor: string | null;
}

/** A partial update of a queue's settings. */
export type SettingsPatch = Partial<QueueSettings>;

export interface Store {
  readonly capabilities: StoreCapabilities;

  /** Creates or migrates the schema; called once before anything else. */
  init(context: StoreContext): Promise<void>;

  /** Inserts all or none. A message whose queue has a live message with its dedupeId is not inserted. */
  send(messages: NewMessage[], now: number, transaction?: unknown): Promise<SendOutcome[]>;
  /**
   * `queues` may have deliverable messages that no consumer waiting in this process will take: a store shared
   * by processes that tell each other of work (PostgreSQL's hints) tells the others' consumers. A wake only.
   */
  touched?(queues: readonly string[]): void;
  /**
   * Inserts a flow in one transaction: every node, in order, a parent `pending` with its count of unfinished
   * children. A node deduplicated (as `send` does) inserts nothing of its subtree, and its parent does not
   * wait for it. Answers an outcome per node, null for a node under a deduplicated one.
   *
   * A child's end (completed, dead, cancelled: however it comes) counts down its pending parent by one, in
   * the same transaction, through the parent's primary key; when it reaches zero the parent is queued (event
   * `waiting`). A child dead or cancelled makes a `fail-parent` parent dead (error {@link childFailed}) and
   * cancels the parent's unfinished descendants, and that parent's end counts for its own parent in turn.
   * Cancelling a pending parent cancels its unfinished descendants too; reviving a child of a pending parent
   * counts it unfinished again.
   */
  sendFlow(messages: FlowMessage[], now: number): Promise<(SendOutcome | null)[]>;
  /** The children of message `id`, in send order; null when no message `id` exists. */
  children(id: string): Promise<MessageRecord[] | null>;
  /** Inserts one copy of `message` per queue subscribed to `topic`, each with an id from `newId`. */
  publish(
    topic: string,
    message: Omit<NewMessage, 'id' | 'queue'>,
    newId: () => string,
    now: number,
  ): Promise<{ queue: string; id: string }[]>;

  /**
   * Leases up to `max` deliverable messages of `queue`: queued, due, not behind an earlier message of their
   * key, queue not paused, within the queue's concurrency and rate limit; by priority, then runAt, then send
   * order. Expired leases of the queue are settled first. `lease` null: the message's, else the queue's.
   * Each attempt gets a deadline `now + timeout` (`timeout` null: the message's, else the queue's, else
   * none); the lease given, and every extension, is capped by it. When the deadline passes, the attempt
   * fails with a TimeoutError (retried by the backoff, or dead when its attempts are spent), settled like an
   * expired lease by whoever comes first: a claim of the queue, `expire`, the sweep.
   */
  claim(queue: string, max: number, lease: number | null, now: number, timeout?: number | null): Promise<Claimed[]>;
  complete(items: Completion[], now: number): Promise<Settled[]>;
  fail(items: Failure[], now: number): Promise<Settled[]>;
  /** Puts leased messages back, the attempt not counted; null for a stale receipt. */
  release(items: DeliveryRefItem[], now: number): Promise<Settled[]>;
  /** The new lease end (never past the attempt's deadline), or null when the receipt is stale. */
  extend(id: string, receipt: string, lease: number, now: number): Promise<number | null>;
  /** False when the receipt is stale. */
  progress(id: string, receipt: string, value: string, now: number): Promise<boolean>;

  get(id: string): Promise<MessageRecord | null>;
  /** Cancels (or flags, when active); null when no such message. */
  cancel(id: string, now: number): Promise<MessageRecord | null>;
  /** Requeues a dead or cancelled message (fresh attempts) or makes a queued one due now; null when none. */
  retry(id: string, now: number): Promise<MessageRecord | null>;
  list(queue: string, query: ListQuery, now: number): Promise<RecordPage>;
  /** Stats of one queue, or of every known queue when `queue` is null. */
  stats(queue: string | null, now: number): Promise<QueueStats[]>;
  settings(queue: string): Promise<QueueSettings>;
  /**
   * A queue whose `deadLetter` is set: a message that becomes dead in it, by any path (a failed or expired
   * attempt, a timeout), gets a copy in that queue in the same transaction (see `deadLetterCopy`).
   */
  configure(queue: string, patch: SettingsPatch): Promise<QueueSettings>;
  redrive(queue: string, now: number): Promise<number>;
  purge(queue: string, states: MessageState[], now: number): Promise<number>;

  subscribe(topic: string, queue: string): Promise<void>;
  unsubscribe(topic: string, queue: string): Promise<void>;
  /** The queues subscribed to `topic`, by name. */
  subscriptions(topic: string): Promise<string[]>;

  /** Creates or replaces a schedule. */
  putSchedule(schedule: ScheduleRecord): Promise<void>;
  deleteSchedule(name: string): Promise<boolean>;
  listSchedules(): Promise<ScheduleRecord[]>;
  /**
   * Fires every schedule due at `now` (nextAt <= now): inserts `message(schedule, tick)` and moves nextAt to
   * `next(schedule, now)`, in one transaction, so each tick sends exactly once across processes. A schedule
   * that missed several ticks (nothing ran) sends once, for the latest. Answers how many fired.
   */
  fireSchedules(
    now: number,
    next: (schedule: ScheduleRecord, after: number) => number,
    message: (schedule: ScheduleRecord, tick: number) => NewMessage,
  ): Promise<number>;

  /** Settles the expired leases of `queue` (lapsed, or past their attempt's deadline); answers how many. */
  expire(queue: string, now: number): Promise<number>;

  /**
   * Creates or replaces a webhook endpoint (a replacement keeps its `createdAt`); answers it as stored. When
   * no webhook existed before, the webhook cursor moves to the end of the log, so a first endpoint receives
   * events from now on, not the retained history.
   */
  putWebhook(webhook: WebhookRecord): Promise<WebhookRecord>;
  /** Removes a webhook and its deliveries log; answers whether it existed. */
  deleteWebhook(name: string): Promise<boolean>;
  /** Every webhook, by name. */
  listWebhooks(): Promise<WebhookRecord[]>;
  /** The seq of the last event turned into webhook deliveries. */
  webhookCursor(): Promise<number>;
  /**
   * In one transaction: when the webhook cursor is at `from`, inserts `deliveries` (messages of the internal
   * deliveries queue) and moves the cursor to `to`; otherwise does nothing (another process got there first)
   * and answers false. So each event fans out once across processes.
   */
  advanceWebhooks(from: number, to: number, deliveries: NewMessage[], now: number): Promise<boolean>;
  /** Appends delivery attempts to the deliveries log, keeping the newest `keep` per webhook. */
  recordWebhookAttempts(attempts: WebhookAttemptRecord[], keep: number): Promise<void>;
  /** The newest attempts of webhook `name`, newest first, at most `limit`. */
  webhookAttempts(name: string, limit: number): Promise<WebhookAttemptRecord[]>;

  /**
   * Housekeeping, bounded per call: settles expired leases (redelivery or dead), removes finished messages
   * past their retention and events past `eventRetention` (while a webhook exists, never an event the
   * webhook cursor has not passed). Answers how much it did, so callers can repeat.
   */
  sweep(now: number, eventRetention: number): Promise<{ expired: number; removed: number }>;
  /** Events with seq greater than `after`, oldest first, at most `limit`. */
  readEvents(after: number, limit: number): Promise<FerryEvent[]>;
  /** The highest seq committed so far (0 when none). */
  lastSeq(): Promise<number>;

  close(): Promise<void>;
}

/** A schedule as stored. */
export interface ScheduleRecord {
  name: string;
  cron: string;
  tz: string;
  queue: string;
  /** Serialized JSON. */
  payload: string;
  /** Serialized JSON of the send options. */
  options: string;
  nextAt: number;
  lastAt: number | null;
}

/** A webhook endpoint as stored. */
export interface WebhookRecord {
  name: string;
  url: string;
  /** Null: every queue. */
  queues: string[] | null;
  types: EventType[];
  /** The signing secret as given (`whsec_…`). */
  secret: string;
  createdAt: number;
  updatedAt: number;
}

/** One attempt to deliver an event to a webhook, as the deliveries log keeps it. */
export interface WebhookAttemptRecord {
  webhook: string;
  /** The `webhook-id` header: the delivery's id, the same on every retry. */
  deliveryId: string;
  /** The event delivered. */
  seq: number;
  type: EventType;
  queue: string;
  messageId: string;
  attempt: number;
  /** The HTTP status answered, or null when none came (refused, timed out, unreachable). */
  status: number | null;
  error: string | null;
  outcome: 'delivered' | 'retrying' | 'gave_up';
  at: number;
  durationMs: number;
}

/** An event as a store builds it, before seq and time are assigned at commit. */
export interface PendingEvent {
  type: EventType;
  queue: string;
  id: string;
  attempt?: number;
  result?: unknown;
  error?: unknown;
  progress?: unknown;
  /** For `sent` and `retrying`: when the message is due, so idle consumers can wake then. Not public. */
  runAt?: number;
  /** When it happened (the operation's `now`). */
  at: number;
}
