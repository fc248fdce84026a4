/**
 * The public contract of Ferry (SPEC §1 and §3): every store, and the HTTP client, implement {@link Ferry}.
 * This module is browser-safe: it imports nothing from `node:`.
 */

/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** Whole milliseconds, or a string such as `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"`. */
export type Duration = number | string;

/**
 * A message's state. `waiting` and `delayed` differ only by whether `runAt` has passed; `pending` is a flow's
 * parent waiting for its children to finish.
 */
export type MessageState = 'pending' | 'waiting' | 'delayed' | 'active' | 'completed' | 'dead' | 'cancelled';

export const MESSAGE_STATES: readonly MessageState[] = [
  'pending',
  'waiting',
  'delayed',
  'active',
  'completed',
  'dead',
  'cancelled',
];

/** The states a message never leaves by itself. */
export const FINAL_STATES: readonly MessageState[] = ['completed', 'dead', 'cancelled'];

/** How long a failed attempt waits before the next one. */
export interface Backoff {
  /** `exponential` doubles from `delay` up to `max`; `fixed` always waits `delay`. */
  type: 'exponential' | 'fixed';
  /** Default `1s`. */
  delay?: Duration;
  /** Cap for `exponential`. Default `1h`. */
  max?: Duration;
  /** Randomize each wait between half and all of it (exponential only). Default true. */
  jitter?: boolean;
}

/** Options of one send. */
export interface SendOptions {
  /** Do not deliver before this much time has passed. */
  delay?: Duration;
  /** Do not deliver before this moment (a Date, an ISO 8601 string, or epoch milliseconds). */
  runAt?: Date | string | number;
  /** Higher is delivered first. Default 0. */
  priority?: number;
  /** Messages sharing a key within a queue are delivered one at a time, in send order. */
  key?: string;
  /** A second send with the same id, while the first message exists, creates nothing. */
  dedupeId?: string;
  /** Attempts before the message is dead. Default: the queue's, else 3. */
  maxAttempts?: number;
  /** Default: the queue's, else exponential from 1s to 1h. */
  backoff?: Backoff;
  /** How long each delivery is leased. Default: the queue's, else 30s. */
  lease?: Duration;
  /**
   * The longest one attempt may run, counted from its delivery: then the attempt fails with a `TimeoutError`
   * (retried by the backoff) and no `extend` moves its lease further. Default: the queue's, else none.
   */
  timeout?: Duration;
  /** String metadata that travels with the message (e.g. `traceparent`). */
  headers?: Record<string, string>;
  /**
   * PostgreSQL only: the caller's `pg` client inside an open transaction. The message exists if and only if
   * that transaction commits. Refused by other stores and over HTTP.
   */
  transaction?: unknown;
}

/** One message of a {@link Ferry.sendBatch}. */
export interface BatchMessage extends SendOptions {
  payload: unknown;
}

/** What a send answers. */
export interface Sent {
  id: string;
  queue: string;
  /** True when a message with the same `dedupeId` existed: nothing was created. */
  deduplicated: boolean;
  /**
   * Waits until the message is completed and resolves with its result. Rejects with
   * {@link MessageFailedError} if it ends dead or cancelled, with {@link TimeoutError} after `timeout`.
   */
  result<T = unknown>(options?: WaitOptions): Promise<T>;
}

export interface WaitOptions {
  /** Give up after this long. Default: wait forever. */
  timeout?: Duration;
  signal?: AbortSignal;
}

/** A failure, as kept on a message and carried by events. */
export interface FailureInfo {
  message: string;
  name?: string;
  data?: unknown;
}

/** Everything known of a message. Times are ISO 8601 strings; absent values are null. */
export interface MessageInfo {
  id: string;
  queue: string;
  state: MessageState;
  payload: unknown;
  result: unknown;
  error: FailureInfo | null;
  /** Deliveries so far. */
  attempts: number;
  maxAttempts: number;
  priority: number;
  key: string | null;
  dedupeId: string | null;
  progress: unknown;
  headers: Record<string, string>;
  sentAt: string;
  runAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  /** When the current lease ends (active messages only). */
  leaseUntil: string | null;
  /** The flow parent this message is a child of, or null. */
  parentId: string | null;
}

/** A message handed to a consumer by {@link Ferry.receive}. */
export interface Delivery {
  id: string;
  queue: string;
  payload: unknown;
  /** 1 for the first delivery. */
  attempt: number;
  /** Proof of this delivery: ack, nack, extend and progress must present it. */
  receipt: string;
  priority: number;
  key: string | null;
  headers: Record<string, string>;
  sentAt: string;
  /** When this lease ends unless extended. */
  leaseUntil: string;
  /**
   * When this attempt times out (its timeout counted from delivery), or null when it has none. No lease
   * outlives it: `extend` answers a `leaseUntil` capped here.
   */
  deadline: string | null;
}

/** What ack, nack, extend and progress need of a delivery. */
export interface DeliveryRef {
  id: string;
  receipt: string;
}

export interface ReceiveOptions {
  /** At most this many messages (1–1000). Default 1. */
  max?: number;
  /** Wait up to this long for the first message. Default 0 (answer at once). */
  wait?: Duration;
  /** Lease length. Default: the message's, else the queue's, else 30s. */
  lease?: Duration;
  /** Timeout of each attempt received, counted from delivery. Default: the message's, else the queue's, else none. */
  timeout?: Duration;
  signal?: AbortSignal;
}

export interface NackOptions {
  error?: FailureInfo | string;
  /** Wait this long before the next attempt, instead of the backoff. */
  delay?: Duration;
  /** `false` makes the message dead at once. Default true. */
  retry?: boolean;
}

/** A message being handled by {@link Ferry.work}. */
export interface Job<P = unknown> {
  id: string;
  queue: string;
  payload: P;
  attempt: number;
  key: string | null;
  priority: number;
  headers: Record<string, string>;
  sentAt: string;
  receipt: string;
  /**
   * Fires when the message is cancelled or the lease is lost, at the attempt's deadline (with a
   * `TimeoutError` reason), and when the worker closes past its bound.
   */
  signal: AbortSignal;
  /** When this attempt times out, or null when it has no timeout. */
  deadline: string | null;
  progress(value: unknown): Promise<void>;
  extend(lease: Duration): Promise<void>;
  /** This message's flow children, oldest first, each with its state and its `result` or `error`. */
  children(): Promise<MessageInfo[]>;
}

export type Handler<P = unknown, R = unknown> = (job: Job<P>) => Promise<R> | R;

export interface WorkOptions {
  /** Handlers running at once. Default 1. */
  concurrency?: number;
  /**
   * Messages fetched ahead, beyond those running, so a batch of quick handlers costs one claim. They are
   * leased (and renewed) while they wait, and released unprocessed if the worker closes. 0 fetches only for
   * free slots. Default: sized by the worker to about two round trips of work (handlers' finish rate times
   * the store's round trip), from the concurrency up to twenty times it.
   */
  prefetch?: number;
  /** Lease per delivery; renewed while the handler runs. Default: the message's, else the queue's, else 30s. */
  lease?: Duration;
  /**
   * The longest one attempt may run, counted from its delivery; overrides the message's and the queue's.
   * Enforced by the store: at the deadline the attempt fails with a `TimeoutError`, the job's signal fires,
   * and a late ack is refused.
   */
  timeout?: Duration;
  /** Called with errors the worker cannot hand to a handler (store unavailable, …). */
  onError?: (error: unknown) => void;
}

export interface Worker {
  readonly queue: string;
  /** Handlers running now. */
  readonly running: number;
  /**
   * Stops taking messages and waits for the handlers in hand, at most `timeout` (default 30s);
   * then aborts their signals and returns. Their messages are redelivered when their leases run out.
   */
  close(options?: { timeout?: Duration }): Promise<void>;
}

export interface ListOptions {
  state?: MessageState;
  /** 1–1000, default 50. */
  limit?: number;
  /** From a previous page's `cursor`. */
  cursor?: string | null;
}

export interface MessagePage {
  messages: MessageInfo[];
  /** Pass to the next call; null on the last page. */
  cursor: string | null;
}

export interface QueueStats {
  name: string;
  pending: number;
  waiting: number;
  delayed: number;
  active: number;
  completed: number;
  dead: number;
  cancelled: number;
  paused: boolean;
}

/** Per-queue defaults; messages' own options take precedence. */
export interface QueueConfig {
  maxAttempts?: number;
  backoff?: Backoff;
  lease?: Duration;
  /** How long completed, dead and cancelled messages are kept. Default 7d. */
  retention?: Duration;
  /** Most messages active at once in this queue, across every consumer. */
  concurrency?: number | null;
  /** Most deliveries per window, across every consumer. */
  rateLimit?: { max: number; per: Duration } | null;
  /** Default timeout of each attempt (see {@link SendOptions.timeout}); null removes it. */
  timeout?: Duration | null;
  /**
   * A queue that receives a copy of every message that becomes dead in this one (same payload and headers,
   * plus `ferry-dead-letter-from: <queue>/<id>`), in the transaction that makes it dead; null removes it.
   */
  deadLetter?: string | null;
  /**
   * Most messages of one ordering key active at once, across every consumer (default 1: one at a time, in
   * send order). Above 1, a key's messages start in send order but may finish in any order.
   */
  keyConcurrency?: number;
  /** Most deliveries of one ordering key per window, across every consumer; other keys are not held back. */
  keyRateLimit?: { max: number; per: Duration } | null;
  /**
   * String entries kept with the queue for tools and faces built on Ferry (the SQS endpoint keeps its queue
   * attributes and tags here); Ferry itself never reads them. Replaces the whole map.
   */
  metadata?: Record<string, string>;
}

/** The full configuration of a queue as stored (durations in milliseconds). */
export interface QueueSettings {
  maxAttempts: number;
  backoff: { type: 'exponential' | 'fixed'; delay: number; max: number; jitter: boolean };
  lease: number;
  retention: number;
  concurrency: number | null;
  rateLimit: { max: number; per: number } | null;
  /** Milliseconds, or null: no timeout. */
  timeout: number | null;
  deadLetter: string | null;
  keyConcurrency: number;
  keyRateLimit: { max: number; per: number } | null;
  metadata: Record<string, string>;
  paused: boolean;
}

/** `waiting`: a flow's parent whose children all finished left `pending` (it was sent pending). */
export type EventType = 'sent' | 'waiting' | 'active' | 'progress' | 'completed' | 'retrying' | 'dead' | 'cancelled';

export const EVENT_TYPES: readonly EventType[] = [
  'sent',
  'waiting',
  'active',
  'progress',
  'completed',
  'retrying',
  'dead',
  'cancelled',
];

/** A change of state. `seq` increases with every event of a store. */
export interface FerryEvent {
  seq: number;
  type: EventType;
  queue: string;
  id: string;
  /** ISO 8601. */
  at: string;
  attempt?: number;
  result?: unknown;
  error?: FailureInfo;
  progress?: unknown;
}

export interface EventsOptions {
  queue?: string;
  types?: EventType[];
  /** Resume after this seq (as SSE's Last-Event-ID): replay from the durable log, then follow. */
  after?: number;
  signal?: AbortSignal;
}

/** An async iterable of events that can be stopped. */
export interface EventStream extends AsyncIterable<FerryEvent> {
  /**
   * The seq this stream starts after: `after` when given, else the newest seq when it opened. Resuming from
   * here (or from the last event read) misses nothing, even if no event has arrived yet.
   */
  since(): Promise<number>;
  close(): void;
}

export interface PurgeOptions {
  /** Default: every state but `active`. */
  state?: MessageState | MessageState[];
}

/** A named schedule: a message sent into `queue` at every tick of `cron` (SPEC §1). */
export interface ScheduleDefinition {
  /** Five fields (minute hour day month weekday), or six with seconds first. */
  cron: string;
  /** IANA time zone the cron is read in. Default UTC. */
  tz?: string;
  queue: string;
  payload?: unknown;
  /** Options of each message sent (`delay` counts from the tick). */
  options?: Omit<SendOptions, 'transaction'>;
}

export interface ScheduleInfo {
  name: string;
  cron: string;
  tz: string;
  queue: string;
  payload: unknown;
  options: Omit<SendOptions, 'transaction'>;
  /** ISO 8601: the next tick. */
  nextRunAt: string;
  /** ISO 8601: the last tick that sent, or null. */
  lastRunAt: string | null;
}

/** Options of a flow node: a send's, plus what the parent does when a child fails. */
export interface FlowOptions extends Omit<SendOptions, 'transaction'> {
  /**
   * `fail-parent` (the default): a child that ends dead or cancelled makes this parent dead at once (error
   * `ChildFailedError`) and cancels its other unfinished children. `ignore-failures`: the parent waits for every
   * child, whatever its end. Only on a node with children.
   */
  children?: 'fail-parent' | 'ignore-failures';
}

/** One node of a flow: a message, and the children that must finish before it is delivered. */
export interface FlowNode {
  queue: string;
  payload?: unknown;
  options?: FlowOptions;
  children?: FlowNode[];
}

/** What {@link Ferry.sendFlow} answers: the same tree, with each node's id. */
export interface FlowSent {
  id: string;
  queue: string;
  /** True when a message with the node's `dedupeId` existed: this node and its subtree created nothing. */
  deduplicated: boolean;
  /** As given (absent on a leaf, and on a deduplicated node: nothing under it was inserted). */
  children?: FlowSent[];
}

/** A webhook endpoint (SPEC §6): Ferry POSTs each matching event to `url`, signed as Standard Webhooks do. */
export interface WebhookDefinition {
  /** `http://` or `https://`; its host must not resolve to a loopback, private, link-local or metadata address. */
  url: string;
  /** Only events of these queues. Default: every queue. */
  queues?: string[];
  /** Only events of these types. Default `['completed', 'dead']`. */
  types?: EventType[];
  /** The signing secret, in Standard Webhooks' form `whsec_<base64 of 24 to 64 bytes>`. Never shown back. */
  secret: string;
}

/** A webhook as listed: its definition without the secret. */
export interface WebhookInfo {
  name: string;
  url: string;
  /** Null: every queue. */
  queues: string[] | null;
  types: EventType[];
  /** ISO 8601. */
  createdAt: string;
  /** ISO 8601. */
  updatedAt: string;
}

/** One attempt to deliver an event to a webhook (newest first in `webhookDeliveries`). */
export interface WebhookDelivery {
  /** The `webhook-id` header: one per event and endpoint, the same on every retry. */
  id: string;
  event: { seq: number; type: EventType; queue: string; id: string };
  attempt: number;
  /** The HTTP status answered, or null when none came (refused, timed out, unreachable). */
  status: number | null;
  error: string | null;
  /** `retrying`: failed, tried again later; `gave_up`: failed for the last time (24 h after the event). */
  outcome: 'delivered' | 'retrying' | 'gave_up';
  /** ISO 8601: when the attempt started. */
  at: string;
  durationMs: number;
}

export interface WebhookDeliveriesOptions {
  /** At most this many, newest first (1–100, default 50). */
  limit?: number;
}

/** The one interface of Ferry, identical on every store and over HTTP. */
export interface Ferry {
  send(queue: string, payload: unknown, options?: SendOptions): Promise<Sent>;
  /** All or nothing. `options.transaction`: as for {@link SendOptions.transaction}. */
  sendBatch(queue: string, messages: BatchMessage[], options?: { transaction?: unknown }): Promise<Sent[]>;
  /**
   * Inserts a tree of messages in one transaction (all or nothing): each parent is `pending` until all its
   * children have finished, then `waiting`. Children may be in other queues and have children of their own.
   */
  sendFlow(node: FlowNode): Promise<FlowSent>;
  /** The flow children of message `id`, oldest first (NotFoundError when `id` does not exist). */
  children(id: string): Promise<MessageInfo[]>;
  /** Sends, then waits for the result. */
  call<T = unknown>(queue: string, payload: unknown, options?: SendOptions & WaitOptions): Promise<T>;
  /** Waits until message `id` is completed (its result), dead or cancelled (rejects). */
  result<T = unknown>(id: string, options?: WaitOptions): Promise<T>;

  receive(queue: string, options?: ReceiveOptions): Promise<Delivery[]>;
  ack(delivery: DeliveryRef, result?: unknown): Promise<void>;
  /** Ends the attempt as failed; answers the state the message is now in. */
  nack(delivery: DeliveryRef, options?: NackOptions): Promise<{ state: MessageState }>;
  extend(delivery: DeliveryRef, lease: Duration): Promise<{ leaseUntil: string }>;
  /**
   * Hands a delivery back unprocessed: the message is waiting again at once and this attempt does not count
   * (a consumer that took more than it could handle, or whose caller went away). A cancel requested meanwhile
   * makes it cancelled.
   */
  release(delivery: DeliveryRef): Promise<{ state: MessageState }>;
  progress(delivery: DeliveryRef, value: unknown): Promise<void>;

  work<P = unknown, R = unknown>(queue: string, handler: Handler<P, R>, options?: WorkOptions): Worker;

  /** Null when no such message exists. */
  get(id: string): Promise<MessageInfo | null>;
  cancel(id: string): Promise<{ state: MessageState }>;
  /** Makes a dead or cancelled message waiting again with fresh attempts, or a delayed one due now. */
  retry(id: string): Promise<{ state: MessageState }>;
  list(queue: string, options?: ListOptions): Promise<MessagePage>;
  stats(queue: string): Promise<QueueStats>;
  queues(): Promise<QueueStats[]>;
  /** Changes a queue's defaults and answers its whole configuration; `configure(queue)` only reads it. */
  configure(queue: string, config?: QueueConfig): Promise<QueueSettings>;
  pause(queue: string): Promise<void>;
  resume(queue: string): Promise<void>;
  /** Moves every dead message of the queue back to waiting, with fresh attempts. */
  redrive(queue: string): Promise<{ moved: number }>;
  purge(queue: string, options?: PurgeOptions): Promise<{ purged: number }>;

  subscribe(topic: string, queue: string): Promise<void>;
  unsubscribe(topic: string, queue: string): Promise<void>;
  /** The queues subscribed to `topic`, sorted by name. */
  subscriptions(topic: string): Promise<string[]>;
  /** One copy into each queue subscribed now. */
  publish(
    topic: string,
    payload: unknown,
    options?: SendOptions,
  ): Promise<{ messages: { queue: string; id: string }[] }>;

  /** Creates or replaces schedule `name`. Each tick sends exactly once, however many processes run the store. */
  schedule(name: string, definition: ScheduleDefinition): Promise<ScheduleInfo>;
  /** Removes schedule `name`; answers whether it existed. */
  unschedule(name: string): Promise<{ deleted: boolean }>;
  schedules(): Promise<ScheduleInfo[]>;

  /** Creates or replaces webhook `name` (SPEC §6); answers it without its secret. */
  putWebhook(name: string, definition: WebhookDefinition): Promise<WebhookInfo>;
  /** Removes webhook `name` and its deliveries log; answers whether it existed. */
  deleteWebhook(name: string): Promise<{ deleted: boolean }>;
  /** Every webhook, by name, without secrets. */
  webhooks(): Promise<WebhookInfo[]>;
  /** The recent delivery attempts of webhook `name`, newest first; `NotFoundError` when there is no such webhook. */
  webhookDeliveries(name: string, options?: WebhookDeliveriesOptions): Promise<WebhookDelivery[]>;

  events(options?: EventsOptions): EventStream;
  close(): Promise<void>;
}
