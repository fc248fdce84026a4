/**
 * The engine: the `Ferry` interface over any {@link Store}. It validates input, resolves defaults, turns
 * records into public shapes, waits (long polls, results, event streams) and runs workers and housekeeping.
 * What must hold across processes (leases, keys, dedupe, limits) is the store's.
 */
import { setMaxListeners } from 'node:events';
import { type Context, context } from '@opentelemetry/api';
import { parseDuration } from '../core/duration.ts';
import {
  ConflictError,
  InvalidRequestError,
  LeaseLostError,
  MessageFailedError,
  NotFoundError,
  TimeoutError,
  UnavailableError,
} from '../core/errors.ts';
import type {
  BatchMessage,
  Delivery,
  DeliveryRef,
  Duration,
  EventStream,
  EventsOptions,
  Ferry,
  FerryEvent,
  FlowNode,
  FlowSent,
  Handler,
  ListOptions,
  MessageInfo,
  MessagePage,
  MessageState,
  NackOptions,
  PurgeOptions,
  QueueConfig,
  QueueSettings,
  QueueStats,
  ReceiveOptions,
  ScheduleDefinition,
  ScheduleInfo,
  SendOptions,
  Sent,
  WaitOptions,
  WebhookDefinition,
  WebhookDeliveriesOptions,
  WebhookDelivery,
  WebhookInfo,
  Worker,
  WorkOptions,
} from '../core/types.ts';
import {
  checkEventTypes,
  checkId,
  checkInteger,
  checkLease,
  checkObject,
  checkOptions,
  checkQueueConfig,
  checkQueueName,
  checkSendOptions,
  checkState,
  checkTimeout,
  copySettings,
  DEFAULT_MAX_PAYLOAD,
  MAX_RECEIPT,
  MAX_RECEIVE,
  serialize,
} from '../core/validate.ts';
import { EXPIRE_BATCH, SWEEP_BATCH } from '../store/constants.ts';
import type { Claimed, MessageRecord, NewMessage, Store } from '../store/store.ts';
import { retryDelay } from './backoff.ts';
import { Bus } from './bus.ts';
import { type Clock, systemClock } from './clock.ts';
import { EventFeed } from './event-feed.ts';
import { flowNodes, flowTree } from './flows.ts';
import { newId } from './ids.ts';
import { toInfo } from './records.ts';
import { checkSchedule, nextTick, toScheduleInfo } from './schedules.ts';
import {
  ferryTracer,
  hasTraceContext,
  producerSpan,
  receiveSpan,
  SERVER_REQUEST,
  withTraceOptions,
} from './tracing.ts';
import { checkWebhook, checkWebhookName, toWebhookDelivery, toWebhookInfo } from './webhooks/definition.ts';
import { checkDestination } from './webhooks/guard.ts';
import { WEBHOOK_QUEUE, WebhookRelay } from './webhooks/relay.ts';
import { LEASE_UNTIL_MS, WorkerLoop } from './worker.ts';

export interface EngineOptions {
  clock?: Clock;
  /** Source of randomness for backoff jitter. */
  random?: () => number;
  /** Largest payload, result or progress value, as UTF-8 JSON. Default 1 MiB. */
  maxPayloadBytes?: number;
  /** How often an idle consumer looks again when no wakeup came (other processes, due times). Default 250ms. */
  pollInterval?: Duration;
  /** How often leases and retention are swept. Default 1s. */
  sweepInterval?: Duration;
  /** How long the event log keeps events for resuming streams. Default 1d. */
  eventRetention?: Duration;
  /**
   * Whether this process delivers webhooks (SPEC §6). Default true: with no webhook registered it costs one
   * small read a second. Turn it off in short-lived processes (the CLI does) and leave it to the long-running ones.
   */
  webhookDelivery?: boolean;
  /**
   * Lets webhooks reach loopback, private, link-local and metadata addresses: for local development and
   * tests only. Default false.
   */
  webhookAllowPrivate?: boolean;
}

const FINAL = new Set(['completed', 'dead', 'cancelled']);
/** The largest time a Date holds: a schedule's next tick when there is none. */
const NEVER = 8.64e15;
const MAX_WAIT = 12 * 3_600_000;
/**
 * How long a reading of a queue's settings that found no concurrency limit is trusted for settling quietly
 * (Engine.settle): a limit set by another process meanwhile leaves its freed slots to the consumers' polls
 * for at most this long.
 */
const LIMITS_TRUSTED_MS = 1000;

export class Engine implements Ferry {
  private readonly clock: Clock;
  private readonly bus: Bus;
  private readonly maxPayload: number;
  private readonly pollInterval: number;
  private readonly sweepInterval: number;
  private readonly eventRetention: number;
  private readonly random: () => number;
  private readonly workers = new Set<WorkerLoop<unknown, unknown>>();
  private readonly feeds = new Set<EventFeed>();
  private readonly closeController = new AbortController();
  private readonly closeWaiters = new Set<() => void>();
  private sweepTimer: ReturnType<Clock['setTimeout']> | undefined;
  private closed = false;
  /** Queues whose settings, read lately, set no concurrency limit: until when that reading is trusted. */
  private readonly unlimited = new Map<string, number>();
  private readonly readingLimits = new Set<string>();
  /** Bumped by every local change of settings: a reading begun before one is not kept. */
  private settingsGeneration = 0;
  /** Set when close() starts: workers are draining, and a new one would never be closed. */
  private closing = false;
  private closingDone: Promise<void> | undefined;
  private readonly webhookAllowPrivate: boolean;
  private readonly relay: WebhookRelay | undefined;

  private constructor(
    private readonly store: Store,
    options: EngineOptions,
  ) {
    // Every open event stream listens for close: many at once is normal, not a leak.
    setMaxListeners(0, this.closeController.signal);
    this.clock = options.clock ?? systemClock;
    this.bus = new Bus(this.clock);
    this.random = options.random ?? Math.random;
    this.maxPayload = options.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD;
    this.pollInterval = parseDuration(options.pollInterval ?? 250, 'pollInterval', 1, 60_000);
    this.sweepInterval = parseDuration(options.sweepInterval ?? 1000, 'sweepInterval', 1, 3_600_000);
    this.eventRetention = parseDuration(options.eventRetention ?? '1d', 'eventRetention', 0, 365 * 86_400_000);
    this.webhookAllowPrivate = options.webhookAllowPrivate === true;
    if (options.webhookDelivery !== false) {
      this.relay = new WebhookRelay({
        store,
        clock: this.clock,
        allowPrivate: this.webhookAllowPrivate,
        receive: (queue, o) => this.claim(queue, o),
        ack: (d) => this.ack(d),
        nack: (d, o) => this.nack(d, o),
      });
    }
  }

  static async create(store: Store, options: EngineOptions = {}): Promise<Engine> {
    let engine: Engine;
    try {
      engine = new Engine(store, options);
      await store.init({
        retryDelay: (attempt, backoff) => retryDelay(attempt, backoff, engine.random),
        onEvents: (events, woken) => {
          engine.bus.publish(events, woken);
          engine.relay?.notice(events);
        },
        onCommitted: (events) => engine.bus.wakeFor(events),
        onActivity: (queues) => engine.bus.wakeQueues(queues),
      });
    } catch (error) {
      // A store that could not start (a newer schema, no database), or options refused, lets go of what it
      // opened: connections left in a pool kept a CLI alive for the pool's idle timeout after it said why.
      await store.close().catch(() => {});
      throw error;
    }
    engine.scheduleSweep();
    engine.relay?.start();
    return engine;
  }

  private scheduleSweep(): void {
    const timer = this.clock.setTimeout(() => {
      void this.sweep().finally(() => {
        if (!this.closed) this.scheduleSweep();
      });
    }, this.sweepInterval);
    (timer as { unref?: () => void }).unref?.();
    this.sweepTimer = timer;
  }

  /** Settles expired leases and removes what retention allows; repeats while a batch came back full. */
  async sweep(): Promise<void> {
    try {
      try {
        await this.fireSchedules(this.clock.now());
      } catch {
        // A schedule that cannot fire must not stop leases and retention below.
      }
      for (let i = 0; i < 20 && !this.closed; i++) {
        const { expired, removed } = await this.store.sweep(this.clock.now(), this.eventRetention);
        if (expired < EXPIRE_BATCH && removed < SWEEP_BATCH) break;
      }
    } catch {
      // Unavailable store: the next sweep tries again.
    }
  }

  private guard(): void {
    if (this.closed) throw new UnavailableError('this Ferry is closed');
  }

  private message(
    queue: string,
    payload: unknown,
    options: SendOptions | undefined,
    now: number,
    extra?: string[],
  ): NewMessage {
    const o = checkSendOptions(options, now, extra);
    return { id: newId(), queue, payload: serialize(payload, 'payload', this.maxPayload), ...o };
  }

  private sent(queue: string, id: string, deduplicated: boolean): Sent {
    return { id, queue, deduplicated, result: (options) => this.result(id, options) };
  }

  async send(queue: string, payload: unknown, options?: SendOptions): Promise<Sent> {
    this.guard();
    checkQueueName(queue);
    const tracer = ferryTracer();
    // A message that already carries a trace context (the caller's, or connect()'s) was traced upstream.
    if (tracer === undefined || hasTraceContext(options?.headers)) return this.sendOne(queue, payload, options);
    return producerSpan(
      tracer,
      'send',
      queue,
      1,
      (ctx) => this.sendOne(queue, payload, withTraceOptions(options, ctx)),
      (sent) => sent.id,
    );
  }

  private async sendOne(queue: string, payload: unknown, options: SendOptions | undefined): Promise<Sent> {
    const now = this.clock.now();
    const message = this.message(queue, payload, options, now);
    const [outcome] = await this.store.send([message], now, this.transaction(options?.transaction));
    return this.sent(queue, outcome!.id, outcome!.deduplicated);
  }

  /** The caller's transaction handle, where the store can use one. */
  private transaction(handle: unknown): unknown {
    if (handle === undefined) return undefined;
    if (!this.store.capabilities.transactionalSend) {
      throw new InvalidRequestError('transaction is supported on PostgreSQL stores only');
    }
    if (handle === null || typeof (handle as { query?: unknown }).query !== 'function') {
      throw new InvalidRequestError('transaction must be a pg client (with a query method) inside an open transaction');
    }
    return handle;
  }

  async sendBatch(queue: string, messages: BatchMessage[], options?: { transaction?: unknown }): Promise<Sent[]> {
    this.guard();
    checkQueueName(queue);
    const transaction = this.transaction(checkOptions(options, ['transaction']).transaction);
    if (!Array.isArray(messages)) throw new InvalidRequestError('messages must be an array of { payload, ...options }');
    if (messages.length > 100_000) throw new InvalidRequestError('a batch holds at most 100000 messages');
    const tracer = ferryTracer();
    if (tracer === undefined || messages.every((m) => hasTraceContext(m?.headers))) {
      return this.sendMany(queue, messages, transaction);
    }
    return producerSpan(tracer, 'send', queue, messages.length, (ctx) =>
      this.sendMany(queue, messages, transaction, ctx),
    );
  }

  private async sendMany(
    queue: string,
    messages: BatchMessage[],
    transaction: unknown,
    trace?: Context,
  ): Promise<Sent[]> {
    const now = this.clock.now();
    const items = messages.map((m, i) => {
      const checked = checkObject(m, `messages[${i}]`) as unknown as BatchMessage;
      const { payload, ...options } = trace === undefined ? checked : withTraceOptions(checked, trace);
      if (options.transaction !== undefined) {
        throw new InvalidRequestError(`messages[${i}]: pass transaction in sendBatch's options, not per message`);
      }
      try {
        return this.message(queue, payload, options, now);
      } catch (error) {
        if (error instanceof Error) error.message = `messages[${i}]: ${error.message}`;
        throw error;
      }
    });
    if (items.length === 0) return [];
    const outcomes = await this.store.send(items, now, transaction);
    return outcomes.map((o) => this.sent(queue, o.id, o.deduplicated));
  }

  async sendFlow(node: FlowNode): Promise<FlowSent> {
    this.guard();
    const now = this.clock.now();
    const nodes = flowNodes(node, (queue, payload, options) => this.message(queue, payload, options, now));
    return flowTree(nodes, await this.store.sendFlow(nodes, now));
  }

  async children(id: string): Promise<MessageInfo[]> {
    this.guard();
    checkId(id);
    const records = await this.store.children(id);
    if (records === null) throw new NotFoundError(`no message ${id}`);
    const now = this.clock.now();
    return records.map((r) => toInfo(r, now));
  }

  async call<T = unknown>(queue: string, payload: unknown, options: SendOptions & WaitOptions = {}): Promise<T> {
    const { timeout, signal, ...sendOptions } = options ?? {};
    const sent = await this.send(queue, payload, sendOptions);
    return sent.result<T>({ ...(timeout === undefined ? {} : { timeout }), ...(signal ? { signal } : {}) });
  }

  async result<T = unknown>(id: string, options: WaitOptions = {}): Promise<T> {
    this.guard();
    checkId(id);
    checkOptions(options, ['timeout', 'signal']);
    const timeout = options.timeout === undefined ? undefined : parseDuration(options.timeout, 'timeout', 0, MAX_WAIT);
    const info = await this.waitFinal(id, timeout, options.signal);
    if (info.state === 'completed') return info.result as T;
    throw new MessageFailedError(info);
  }

  /** Waits until message `id` is completed, dead or cancelled; answers its info. */
  async waitFinal(id: string, timeout?: number, signal?: AbortSignal): Promise<MessageInfo> {
    let wake: (() => void) | undefined;
    const unsubscribe = this.bus.onFinal(id, () => wake?.());
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : this.clock.now() + timeout;
    try {
      for (;;) {
        const info = await this.get(id);
        if (!info) throw new NotFoundError(`no message ${id}`);
        if (FINAL.has(info.state)) return info;
        const left = deadline - this.clock.now();
        if (left <= 0) throw new TimeoutError(`message ${id} is still ${info.state} after ${timeout} ms`);
        if (signal?.aborted) throw new TimeoutError(`waiting for message ${id} was aborted`);
        if (this.closed) throw new UnavailableError('this Ferry is closed');
        // The event wakes us at once; the timer re-reads in case an event was missed (another process).
        await new Promise<void>((resolve) => {
          const done = () => {
            this.clock.clearTimeout(timer);
            signal?.removeEventListener('abort', done);
            this.closeWaiters.delete(done);
            wake = undefined;
            resolve();
          };
          const timer = this.clock.setTimeout(done, Math.min(left, Math.max(1000, this.pollInterval)));
          wake = done;
          signal?.addEventListener('abort', done, { once: true });
          // A set, not a listener on one shared signal: thousands of concurrent waits are normal here.
          this.closeWaiters.add(done);
        });
      }
    } finally {
      unsubscribe();
    }
  }

  async receive(queue: string, options: ReceiveOptions = {}): Promise<Delivery[]> {
    this.guard();
    checkQueueName(queue);
    const tracer = ferryTracer();
    // Over HTTP the request's SERVER span stands for the receive; the caller's side has the receive span.
    if (tracer === undefined || context.active().getValue(SERVER_REQUEST) === true) return this.claim(queue, options);
    return receiveSpan(tracer, queue, () => this.claim(queue, options));
  }

  /** receive() without a span: work() polls through it, and traces each attempt instead. */
  private async claim(queue: string, options: ReceiveOptions): Promise<Delivery[]> {
    const o = checkOptions(options, ['max', 'wait', 'lease', 'timeout', 'signal']);
    const max = o.max === undefined ? 1 : checkInteger(o.max, 'max', 1, MAX_RECEIVE);
    const wait = o.wait === undefined ? 0 : parseDuration(o.wait, 'wait', 0, MAX_WAIT);
    const lease = o.lease === undefined ? null : checkLease(o.lease);
    const timeout = o.timeout === undefined ? null : checkTimeout(o.timeout);
    const deadline = this.clock.now() + wait;
    /** Woken by a commit that counted its new messages: they were shared out, no need to pass the wake on. */
    let counted = false;
    for (;;) {
      const woken = this.bus.watch(queue);
      let claimed: Claimed[];
      let missed: boolean;
      try {
        claimed = await this.store.claim(queue, max, lease, this.clock.now(), timeout);
      } catch (error) {
        // This claim may be the one a wake chose: another waiting consumer looks in its place.
        this.bus.wake(queue);
        throw error;
      } finally {
        missed = woken();
      }
      if (claimed.length > 0) {
        // A full claim may have left more: the next waiting consumer looks, or, with none waiting here, the
        // other processes' consumers. A wake without a count (another process's hint, a resumed queue, a
        // finished message) reaches only one, and this is how the others hear of a backlog.
        if (claimed.length === max && !counted && !this.bus.wake(queue)) this.store.touched?.([queue]);
        return claimed.map(toDelivery);
      }
      const left = deadline - this.clock.now();
      if (left <= 0 || o.signal?.aborted || this.closed) return [];
      // Woken while claiming: what woke it may have committed after the claim looked, so look again now.
      counted = !missed && (await this.bus.waitForQueue(queue, Math.min(left, this.pollInterval), o.signal, max));
    }
  }

  private ref(delivery: DeliveryRef): DeliveryRef {
    const d = checkObject(delivery, 'delivery');
    if (typeof d.receipt !== 'string' || d.receipt.length === 0 || d.receipt.length > MAX_RECEIPT) {
      throw new InvalidRequestError('delivery.receipt must be the receipt string of a delivery');
    }
    return { id: checkId(d.id, 'delivery.id'), receipt: d.receipt };
  }

  async ack(delivery: DeliveryRef, result?: unknown): Promise<void> {
    this.guard();
    const { id, receipt } = this.ref(delivery);
    const text = result === undefined ? null : serialize(result, 'result', this.maxPayload);
    const [settled] = await this.settle(delivery, () =>
      this.store.complete([{ id, receipt, result: text }], this.clock.now()),
    );
    if (!settled) throw new LeaseLostError();
  }

  /**
   * Runs a settle that ends an attempt of `delivery`: quietly (its ended event wakes no consumer, see
   * Bus.settlesQuietly) when the delivery is one this Ferry handed out (marked by its lease's end in
   * milliseconds), with no key, on a queue whose settings, read lately, set no concurrency limit; then its end
   * frees no other message. Otherwise, or while the settings are being read, as any commit.
   */
  private settle<T>(delivery: DeliveryRef, run: () => Promise<T>): Promise<T> {
    if (!(LEASE_UNTIL_MS in delivery)) return run();
    const { key, queue } = delivery as unknown as Delivery;
    if (key !== null || typeof queue !== 'string') return run();
    const now = this.clock.now();
    const until = this.unlimited.get(queue);
    if (until !== undefined && until > now) return this.bus.settlesQuietly(delivery.id, run);
    if (until !== undefined) this.unlimited.delete(queue);
    if (!this.readingLimits.has(queue) && !this.closed) {
      this.readingLimits.add(queue);
      const generation = this.settingsGeneration;
      this.store
        .settings(queue)
        .then((s) => {
          if (generation !== this.settingsGeneration) return;
          // Trusted from when it was asked for, not answered: the settings may have changed since.
          if (s.concurrency === null) this.unlimited.set(queue, now + LIMITS_TRUSTED_MS);
          else this.unlimited.delete(queue);
          // Many queues (names made per tenant, say): the readings gone stale go, not only when asked again.
          if (this.unlimited.size > 1024) {
            for (const [q, until] of this.unlimited) if (until <= now) this.unlimited.delete(q);
          }
        })
        .catch(() => {
          // Unread: settles wake as any commit does until a later reading.
        })
        .finally(() => this.readingLimits.delete(queue));
    }
    return run();
  }

  async nack(delivery: DeliveryRef, options: NackOptions = {}): Promise<{ state: MessageState }> {
    this.guard();
    const { id, receipt } = this.ref(delivery);
    const o = checkOptions(options, ['error', 'delay', 'retry']);
    const error =
      o.error === undefined
        ? { message: 'nacked' }
        : typeof o.error === 'string'
          ? { message: o.error }
          : (checkObject(o.error, 'error') as unknown as { message: string });
    if (typeof error.message !== 'string') throw new InvalidRequestError('error.message must be a string');
    if (o.retry !== undefined && typeof o.retry !== 'boolean') throw new InvalidRequestError('retry must be a boolean');
    const delay = o.delay === undefined ? null : parseDuration(o.delay, 'delay', 0, 366 * 86_400_000);
    const now = this.clock.now();
    const [settled] = await this.settle(delivery, () =>
      this.store.fail(
        [{ id, receipt, error: serialize(error, 'error', this.maxPayload), retry: o.retry !== false, delay }],
        now,
      ),
    );
    if (!settled) throw new LeaseLostError();
    if (settled !== 'queued') return { state: settled };
    if (delay !== null) return { state: delay === 0 ? 'waiting' : 'delayed' };
    // The backoff set the due time inside the store (a zero backoff makes it due now): read it, as get()
    // does, instead of guessing. A claim, cancel or ack meanwhile keeps runAt as the nack set it.
    const record = await this.store.get(id);
    return { state: record !== null && record.runAt > now ? 'delayed' : 'waiting' };
  }

  async release(delivery: DeliveryRef): Promise<{ state: MessageState }> {
    this.guard();
    const ref = this.ref(delivery);
    const [settled] = await this.store.release([ref], this.clock.now());
    if (!settled) throw new LeaseLostError();
    return { state: settled === 'queued' ? 'waiting' : settled };
  }

  async extend(delivery: DeliveryRef, lease: Duration): Promise<{ leaseUntil: string }> {
    this.guard();
    const { id, receipt } = this.ref(delivery);
    const ms = checkLease(lease);
    const until = await this.store.extend(id, receipt, ms, this.clock.now());
    if (until === null) throw new LeaseLostError();
    return { leaseUntil: new Date(until).toISOString() };
  }

  async progress(delivery: DeliveryRef, value: unknown): Promise<void> {
    this.guard();
    const { id, receipt } = this.ref(delivery);
    const ok = await this.store.progress(id, receipt, serialize(value, 'progress', this.maxPayload), this.clock.now());
    if (!ok) throw new LeaseLostError();
  }

  work<P = unknown, R = unknown>(queue: string, handler: Handler<P, R>, options: WorkOptions = {}): Worker {
    this.guard();
    if (this.closing) throw new UnavailableError('this Ferry is closing: no new worker can start');
    checkQueueName(queue);
    if (typeof handler !== 'function') throw new InvalidRequestError('handler must be a function');
    const worker = new WorkerLoop<P, R>(
      {
        receive: (q, o) => {
          this.guard();
          return this.claim(q, o);
        },
        ack: (d, r) => this.ack(d, r),
        nack: (d, o) => this.nack(d, o),
        extend: (d, l) => this.extend(d, l),
        progress: (d, v) => this.progress(d, v),
        release: (d) => this.release(d),
        children: (id) => this.children(id),
        onCancel: (id, abort) => this.bus.onCancel(id, abort),
        expire: (q) => this.store.expire(q, this.clock.now()),
        now: () => this.clock.now(),
        idleWait: 30_000,
      },
      queue,
      handler,
      options,
    );
    const loop = worker as unknown as WorkerLoop<unknown, unknown>;
    this.workers.add(loop);
    const close = worker.close.bind(worker);
    worker.close = (o) => close(o).finally(() => this.workers.delete(loop));
    return worker;
  }

  async get(id: string): Promise<MessageInfo | null> {
    this.guard();
    checkId(id);
    const record = await this.store.get(id);
    return record ? toInfo(record, this.clock.now()) : null;
  }

  async cancel(id: string): Promise<{ state: MessageState }> {
    this.guard();
    checkId(id);
    const record = await this.store.cancel(id, this.clock.now());
    if (!record) throw new NotFoundError(`no message ${id}`);
    if (record.state === 'active' && record.cancelRequested) this.bus.cancelRequested(id);
    return { state: toInfo(record, this.clock.now()).state };
  }

  async retry(id: string): Promise<{ state: MessageState }> {
    this.guard();
    checkId(id);
    const record = await this.store.retry(id, this.clock.now());
    if (!record) throw new NotFoundError(`no message ${id}`);
    if (record.state === 'active' || record.state === 'completed' || record.state === 'pending') {
      throw new ConflictError(
        `message ${id} is ${record.state}: only dead, cancelled or delayed messages can be retried`,
      );
    }
    return { state: toInfo(record, this.clock.now()).state };
  }

  async list(queue: string, options: ListOptions = {}): Promise<MessagePage> {
    this.guard();
    checkQueueName(queue);
    const o = checkOptions(options, ['state', 'limit', 'cursor']);
    const state = o.state === undefined || o.state === null ? null : checkState(o.state);
    const limit = o.limit === undefined ? 50 : checkInteger(o.limit, 'limit', 1, 1000);
    let cursor: string | null = null;
    if (o.cursor !== undefined && o.cursor !== null) {
      if (typeof o.cursor !== 'string' || !/^\d{1,20}$/.test(o.cursor)) {
        throw new InvalidRequestError('cursor must be the cursor of a previous page');
      }
      cursor = o.cursor;
    }
    const now = this.clock.now();
    const page = await this.store.list(queue, { state, limit, cursor }, now);
    return { messages: page.records.map((r) => toInfo(r, now)), cursor: page.cursor };
  }

  async stats(queue: string): Promise<QueueStats> {
    this.guard();
    checkQueueName(queue);
    const [stats] = await this.store.stats(queue, this.clock.now());
    return stats!;
  }

  async queues(): Promise<QueueStats[]> {
    this.guard();
    // The internal queue of webhook deliveries is Ferry's, not the user's (its log: webhookDeliveries).
    return (await this.store.stats(null, this.clock.now())).filter((q) => q.name !== WEBHOOK_QUEUE);
  }

  async configure(queue: string, config?: QueueConfig): Promise<QueueSettings> {
    this.guard();
    checkQueueName(queue);
    // A copy: the store's answer may be its cache (or the shared defaults), which callers must not reach.
    if (config === undefined) return copySettings(await this.store.settings(queue));
    const settings = copySettings(await this.store.configure(queue, checkQueueConfig(config, queue)));
    this.settingsChanged(queue);
    return settings;
  }

  /**
   * A queue resumed or reconfigured (a limit raised or lifted) may have deliverable messages that no commit
   * announced: a consumer waiting on it looks, here and in the processes that share the store.
   */
  private settingsChanged(queue: string): void {
    this.settingsGeneration++;
    this.unlimited.delete(queue);
    this.bus.wake(queue);
    this.store.touched?.([queue]);
  }

  async pause(queue: string): Promise<void> {
    this.guard();
    checkQueueName(queue);
    await this.store.configure(queue, { paused: true });
  }

  async resume(queue: string): Promise<void> {
    this.guard();
    checkQueueName(queue);
    await this.store.configure(queue, { paused: false });
    this.settingsChanged(queue);
  }

  async redrive(queue: string): Promise<{ moved: number }> {
    this.guard();
    checkQueueName(queue);
    return { moved: await this.store.redrive(queue, this.clock.now()) };
  }

  async purge(queue: string, options: PurgeOptions = {}): Promise<{ purged: number }> {
    this.guard();
    checkQueueName(queue);
    const given = checkOptions(options, ['state']).state;
    const states: MessageState[] =
      given === undefined
        ? ['pending', 'waiting', 'delayed', 'completed', 'dead', 'cancelled']
        : (Array.isArray(given) ? given : [given]).map((s) => checkState(s));
    return { purged: await this.store.purge(queue, [...new Set(states)], this.clock.now()) };
  }

  async subscribe(topic: string, queue: string): Promise<void> {
    this.guard();
    checkQueueName(topic, 'topic name');
    checkQueueName(queue);
    await this.store.subscribe(topic, queue);
  }

  async unsubscribe(topic: string, queue: string): Promise<void> {
    this.guard();
    checkQueueName(topic, 'topic name');
    checkQueueName(queue);
    await this.store.unsubscribe(topic, queue);
  }

  async subscriptions(topic: string): Promise<string[]> {
    this.guard();
    checkQueueName(topic, 'topic name');
    return this.store.subscriptions(topic);
  }

  async publish(
    topic: string,
    payload: unknown,
    options?: SendOptions,
  ): Promise<{ messages: { queue: string; id: string }[] }> {
    this.guard();
    checkQueueName(topic, 'topic name');
    const tracer = ferryTracer();
    if (tracer === undefined || hasTraceContext(options?.headers)) return this.publishOne(topic, payload, options);
    return producerSpan(tracer, 'publish', topic, 1, (ctx) =>
      this.publishOne(topic, payload, withTraceOptions(options, ctx)),
    );
  }

  private async publishOne(
    topic: string,
    payload: unknown,
    options: SendOptions | undefined,
  ): Promise<{ messages: { queue: string; id: string }[] }> {
    const now = this.clock.now();
    const { id: _id, queue: _queue, ...template } = this.message(topic, payload, options, now);
    return { messages: await this.store.publish(topic, template, newId, now) };
  }

  async schedule(name: string, definition: ScheduleDefinition): Promise<ScheduleInfo> {
    this.guard();
    const record = checkSchedule(name, definition, (v) => serialize(v, 'payload', this.maxPayload), this.clock.now());
    await this.store.putSchedule(record);
    return toScheduleInfo(record);
  }

  async unschedule(name: string): Promise<{ deleted: boolean }> {
    this.guard();
    if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
      throw new InvalidRequestError('schedule name must be a non-empty string');
    }
    return { deleted: await this.store.deleteSchedule(name) };
  }

  async schedules(): Promise<ScheduleInfo[]> {
    this.guard();
    return (await this.store.listSchedules()).map(toScheduleInfo);
  }

  /** Sends the message of every schedule due now; each tick once, whichever process gets there first. */
  private fireSchedules(now: number): Promise<number> {
    return this.store.fireSchedules(
      now,
      (s, after) => {
        try {
          return nextTick(s.cron, s.tz, after);
        } catch {
          // No tick left (a one-shot date that has passed): it stays listed and never fires again.
          return NEVER;
        }
      },
      (s, tick) => {
        const options = JSON.parse(s.options) as SendOptions;
        const message = this.message(s.queue, null, options, tick);
        // A tick's message: same payload text as stored, due from the tick (plus any delay).
        return { ...message, payload: s.payload };
      },
    );
  }

  async putWebhook(name: string, definition: WebhookDefinition): Promise<WebhookInfo> {
    this.guard();
    const { record, url } = checkWebhook(name, definition, this.clock.now());
    if (!this.webhookAllowPrivate) await checkDestination(url);
    const stored = await this.store.putWebhook(record);
    this.relay?.changed();
    return toWebhookInfo(stored);
  }

  async deleteWebhook(name: string): Promise<{ deleted: boolean }> {
    this.guard();
    const deleted = await this.store.deleteWebhook(checkWebhookName(name));
    this.relay?.changed();
    return { deleted };
  }

  async webhooks(): Promise<WebhookInfo[]> {
    this.guard();
    return (await this.store.listWebhooks()).map(toWebhookInfo);
  }

  async webhookDeliveries(name: string, options: WebhookDeliveriesOptions = {}): Promise<WebhookDelivery[]> {
    this.guard();
    checkWebhookName(name);
    const o = checkOptions(options, ['limit']);
    const limit = o.limit === undefined ? 50 : checkInteger(o.limit, 'limit', 1, 100);
    const [attempts, hooks] = await Promise.all([this.store.webhookAttempts(name, limit), this.store.listWebhooks()]);
    if (!hooks.some((h) => h.name === name)) throw new NotFoundError(`no webhook named ${name}`);
    return attempts.map(toWebhookDelivery);
  }

  events(options: EventsOptions = {}): EventStream {
    this.guard();
    const o = checkOptions(options, ['queue', 'types', 'after', 'signal']);
    if (o.queue !== undefined) checkQueueName(o.queue);
    const types = o.types === undefined ? undefined : new Set(checkEventTypes(o.types));
    if (o.after !== undefined && (typeof o.after !== 'number' || !Number.isInteger(o.after) || o.after < 0)) {
      throw new InvalidRequestError('after must be a non-negative integer event seq');
    }
    const filter = (e: FerryEvent) =>
      (o.queue === undefined ? e.queue !== WEBHOOK_QUEUE : e.queue === o.queue) && (!types || types.has(e.type));
    const feed = new EventFeed(
      this.store,
      this.bus,
      filter,
      o.after,
      anySignal(o.signal, this.closeController.signal),
      () => this.feeds.delete(feed),
    );
    this.feeds.add(feed);
    return feed;
  }

  close(): Promise<void> {
    // Every caller waits for the one drain; a second close() starts nothing twice.
    this.closingDone ??= this.drainAndClose();
    return this.closingDone;
  }

  private async drainAndClose(): Promise<void> {
    this.closing = true;
    await Promise.all([...[...this.workers].map((w) => w.close({ timeout: 5000 })), this.relay?.close()]);
    this.closed = true;
    this.closeController.abort();
    for (const wake of [...this.closeWaiters]) wake();
    if (this.sweepTimer) this.clock.clearTimeout(this.sweepTimer);
    this.bus.wakeAll();
    for (const feed of this.feeds) feed.close();
    await this.store.close();
  }
}

/**
 * Epoch ms as ISO text, remembering the last few: the deliveries of one claim mostly share their lease's end
 * and deadline, and messages sent in one batch their send time.
 */
const isoCache = new Map<number, string>();
function isoOf(ms: number): string {
  let text = isoCache.get(ms);
  if (text === undefined) {
    if (isoCache.size >= 64) isoCache.clear();
    text = new Date(ms).toISOString();
    isoCache.set(ms, text);
  }
  return text;
}

function toDelivery(c: Claimed): Delivery {
  const delivery: Delivery & { [LEASE_UNTIL_MS]?: number } = {
    id: c.id,
    queue: c.queue,
    payload: c.payload,
    attempt: c.attempt,
    receipt: c.receipt,
    priority: c.priority,
    key: c.key,
    headers: c.headers ?? {},
    sentAt: isoOf(c.sentAt),
    leaseUntil: isoOf(c.leaseUntil),
    deadline: c.deadline === null ? null : isoOf(c.deadline),
  };
  delivery[LEASE_UNTIL_MS] = c.leaseUntil;
  return delivery;
}

function anySignal(...signals: (AbortSignal | undefined)[]): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return present.length === 1 ? (present[0] as AbortSignal) : AbortSignal.any(present);
}

export type { MessageRecord };
