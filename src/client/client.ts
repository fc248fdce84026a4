/**
 * The whole {@link Ferry} interface over HTTP. Arguments are checked here with the engine's own checks, so
 * a bad call fails the same way it would embedded, without a round trip. Waits longer than the server's
 * 60 s cap (receive `wait`, `result()` timeouts) are a sequence of long polls.
 */

import { type Context, context, ROOT_CONTEXT } from '@opentelemetry/api';
import { parseDuration } from '../core/duration.ts';
import {
  errorFromCode,
  InvalidRequestError,
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
import { FINAL_STATES } from '../core/types.ts';
import {
  checkEventTypes,
  checkId,
  checkInteger,
  checkLease,
  checkObject,
  checkQueueConfig,
  checkQueueName,
  checkState,
  checkTimeout,
  MAX_RECEIVE,
} from '../core/validate.ts';
import { ferryTracer, hasTraceContext, producerSpan, receiveSpan, withTraceOptions } from '../engine/tracing.ts';
import { WorkerLoop } from '../engine/worker.ts';
import { CancelWatch } from './cancel-watch.ts';
import { Coalescer, type Outcome } from './coalesce.ts';
import { HttpEventStream } from './events.ts';
import { jsonBody, type RequestOptions, type Transport } from './http.ts';

/** The server refuses longer waits; longer ones are cut into polls of this length. */
const POLL_MS = 55_000;
const MAX_WAIT = 12 * 3_600_000;

const q = (name: string): string => encodeURIComponent(checkQueueName(name));
const m = (id: string): string => encodeURIComponent(checkId(id));
const s = (name: string): string => {
  if (typeof name !== 'string' || name.length === 0 || name.length > 128) {
    throw new InvalidRequestError('schedule name must be a non-empty string of at most 128 characters');
  }
  return encodeURIComponent(name);
};

const w = (name: string): string => encodeURIComponent(checkQueueName(name, 'webhook name'));

function ref(delivery: DeliveryRef): { id: string; receipt: string } {
  if (delivery === null || typeof delivery !== 'object' || typeof delivery.receipt !== 'string' || !delivery.receipt) {
    throw new InvalidRequestError('delivery must be { id, receipt } from receive()');
  }
  return { id: checkId(delivery.id, 'delivery.id'), receipt: delivery.receipt };
}

/** One item's answer in a joined request (`POST /v1/sends`, `POST /v1/acks`). */
interface ItemResult {
  ok: boolean;
  type?: string;
  detail?: string;
}

interface SendResult extends ItemResult {
  id: string;
  queue: string;
  deduplicated: boolean;
}

/**
 * Send requests in flight at once per client: two, so that one slow send (a stalled connection, a busy key)
 * does not hold every other; the sends made while both are taken join the next request. In alternated runs
 * of `bench/pg-mixed.ts --servers 1 --concurrency 0`, sends alone cost the server 122 and 124 µs each with
 * two slots against 105 and 121 with one; four joined less (165 and 205 against 137 and 168).
 */
const SEND_SLOTS = 2;

/** A lone call's JSON body (a non-empty object) as an item of a joined request: `key` first, then the body's fields. */
const withField = (key: string, value: string, json: string): string =>
  `{${JSON.stringify(key)}:${JSON.stringify(value)},${json.slice(1)}`;

function itemOutcome<R extends ItemResult, T>(r: R | undefined, value: (r: R) => T): Outcome<T> {
  if (r?.ok) return { ok: true, value: value(r) };
  return {
    ok: false,
    error: errorFromCode(r?.type ?? 'unavailable', r?.detail ?? 'the server gave no answer for this item'),
  };
}

export class HttpFerry implements Ferry {
  readonly #http: Transport;
  /** Concurrent sends share requests (`POST /v1/sends`), as concurrent acks do (`POST /v1/acks`). */
  readonly #sends = new Coalescer<Sent>(async (jsons) => {
    const { results } = await this.#joined<SendResult>('/v1/sends', `{"sends":[${jsons.join(',')}]}`);
    return jsons.map((_, i) => itemOutcome(results[i], (r) => this.#sent(r.id, r.queue, r.deduplicated)));
  }, SEND_SLOTS);
  readonly #acks = new Coalescer<void>(async (jsons) => {
    const { results } = await this.#joined<ItemResult>('/v1/acks', `{"acks":[${jsons.join(',')}]}`);
    return jsons.map((_, i) => itemOutcome(results[i], () => undefined));
  });
  readonly #closing = new AbortController();
  readonly #workers = new Set<Worker>();
  readonly #cancels: CancelWatch;
  #closed = false;

  constructor(transport: Transport) {
    this.#http = transport;
    this.#cancels = new CancelWatch(transport, this.#closing.signal);
  }

  #guard(): void {
    if (this.#closed) throw new UnavailableError('this Ferry is closed');
  }

  async #call<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    this.#guard();
    // A signal per request: fetch implementations hang a listener on it until the request is collected, so
    // one shared signal would gather thousands.
    const sources = options.signal ? [options.signal, this.#closing.signal] : [this.#closing.signal];
    const signal = AbortSignal.any(sources);
    try {
      return (await this.#http.request<T>(method, path, { ...options, signal })).body;
    } catch (error) {
      if (this.#closing.signal.aborted) throw new UnavailableError('this Ferry is closed');
      throw error;
    }
  }

  /**
   * A joined request. It joins calls of many callers, so it continues none of their traces (each sent
   * message carries its own trace context in its headers).
   */
  #joined<R>(path: string, json: string): Promise<{ results: R[] }> {
    return context.with(ROOT_CONTEXT, () => this.#call<{ results: R[] }>('POST', path, { json }));
  }

  #sent(id: string, queue: string, deduplicated: boolean): Sent {
    return { id, queue, deduplicated, result: (options) => this.result(id, options) };
  }

  async send(queue: string, payload: unknown, options?: SendOptions): Promise<Sent> {
    const path = `/v1/queues/${q(queue)}/messages`;
    const tracer = ferryTracer();
    // The server sees the traceparent this puts in the headers, and makes no second PRODUCER span.
    if (tracer === undefined || hasTraceContext(options?.headers)) return this.#send(path, queue, payload, options);
    return producerSpan(
      tracer,
      'send',
      queue,
      1,
      (ctx) => this.#send(path, queue, payload, withTraceOptions(options, ctx)),
      (sent) => sent.id,
    );
  }

  #send(path: string, queue: string, payload: unknown, options: SendOptions | undefined): Promise<Sent> {
    // Serialized once, now: a payload changed after send() is sent as it was, whichever route takes it.
    const json = jsonBody({ ...(options ?? {}), payload: payload ?? null });
    // A joined item names its queue; a stray `queue` option goes alone, to be refused as it would be.
    const item = options && Object.hasOwn(options, 'queue') ? null : withField('queue', queue, json);
    return this.#sends.run(item, async () => {
      const s = await this.#call<{ id: string; deduplicated: boolean }>('POST', path, { json });
      return this.#sent(s.id, queue, s.deduplicated);
    });
  }

  async sendBatch(queue: string, messages: BatchMessage[]): Promise<Sent[]> {
    const path = `/v1/queues/${q(queue)}/batch`;
    if (!Array.isArray(messages)) throw new InvalidRequestError('messages must be an array of { payload, ...options }');
    this.#guard();
    if (messages.length === 0) return [];
    const tracer = ferryTracer();
    if (tracer === undefined || messages.every((item) => hasTraceContext(item?.headers))) {
      return this.#sendBatch(path, queue, messages, undefined);
    }
    return producerSpan(tracer, 'send', queue, messages.length, (ctx) => this.#sendBatch(path, queue, messages, ctx));
  }

  async #sendBatch(path: string, queue: string, messages: BatchMessage[], trace: Context | undefined): Promise<Sent[]> {
    const answer = await this.#call<{ messages: { id: string; deduplicated: boolean }[] }>('POST', path, {
      body: {
        messages: messages.map((given) => {
          const item = trace === undefined ? given : withTraceOptions(given, trace);
          return item && item.payload === undefined ? { ...item, payload: null } : item;
        }),
      },
    });
    return answer.messages.map((s) => this.#sent(s.id, queue, s.deduplicated));
  }

  async sendFlow(node: FlowNode): Promise<FlowSent> {
    return this.#call<FlowSent>('POST', '/v1/flows', { body: node });
  }

  async children(id: string): Promise<MessageInfo[]> {
    const answer = await this.#call<{ messages: MessageInfo[] }>('GET', `/v1/messages/${m(id)}/children`);
    return answer.messages;
  }

  async call<T = unknown>(queue: string, payload: unknown, options: SendOptions & WaitOptions = {}): Promise<T> {
    const { timeout, signal, ...sendOptions } = options ?? {};
    const sent = await this.send(queue, payload, sendOptions);
    return sent.result<T>({ ...(timeout === undefined ? {} : { timeout }), ...(signal ? { signal } : {}) });
  }

  async result<T = unknown>(id: string, options: WaitOptions = {}): Promise<T> {
    const path = `/v1/messages/${m(id)}`;
    const timeout = options?.timeout === undefined ? undefined : parseDuration(options.timeout, 'timeout', 0, MAX_WAIT);
    const deadline = timeout === undefined ? Number.POSITIVE_INFINITY : Date.now() + timeout;
    const signal = options?.signal;
    for (;;) {
      const wait = Math.max(0, Math.min(POLL_MS, deadline - Date.now()));
      let info: MessageInfo;
      try {
        info = await this.#call<MessageInfo>('GET', path, { query: { wait }, signal });
      } catch (error) {
        if (signal?.aborted) throw new TimeoutError(`waiting for message ${id} was aborted`);
        throw error;
      }
      if (info.state === 'completed') return info.result as T;
      if (FINAL_STATES.includes(info.state)) throw new MessageFailedError(info);
      if (Date.now() >= deadline) throw new TimeoutError(`message ${id} is still ${info.state} after ${timeout} ms`);
    }
  }

  async receive(queue: string, options: ReceiveOptions = {}): Promise<Delivery[]> {
    const path = `/v1/queues/${q(queue)}/receive`;
    const tracer = ferryTracer();
    if (tracer === undefined) return this.#receive(path, options);
    return receiveSpan(tracer, queue, () => this.#receive(path, options));
  }

  /** receive() without a span: work() polls through it, and traces each attempt instead. */
  async #receive(path: string, options: ReceiveOptions): Promise<Delivery[]> {
    const o = checkObject(options ?? {}, 'options') as ReceiveOptions;
    for (const key of Object.keys(o)) {
      if (!['max', 'wait', 'lease', 'timeout', 'signal'].includes(key)) {
        throw new InvalidRequestError(
          `options has an unknown field ${JSON.stringify(key)}; allowed: max, wait, lease, timeout`,
        );
      }
    }
    const max = o.max === undefined ? undefined : checkInteger(o.max, 'max', 1, MAX_RECEIVE);
    const wait = o.wait === undefined ? 0 : parseDuration(o.wait, 'wait', 0, MAX_WAIT);
    const lease = o.lease === undefined ? undefined : checkLease(o.lease);
    const timeout = o.timeout === undefined ? undefined : checkTimeout(o.timeout);
    const deadline = Date.now() + wait;
    this.#guard();
    for (;;) {
      const left = Math.max(0, Math.min(POLL_MS, deadline - Date.now()));
      let answer: { messages: Delivery[] };
      try {
        answer = await this.#call('POST', path, { body: { max, wait: left, lease, timeout }, signal: o.signal });
      } catch (error) {
        // Aborted by the caller (or by close, as the embedded Ferry does): nothing was leased.
        if (o.signal?.aborted || this.#closing.signal.aborted) return [];
        throw error;
      }
      if (answer.messages.length > 0 || Date.now() >= deadline || o.signal?.aborted) return answer.messages;
    }
  }

  /**
   * A lone ack goes at once; those that arrive while one is in flight go together in the next request
   * (`POST /v1/acks`, see coalesce.ts). A worker's acks then cost one round trip per batch, not one each,
   * with no delay added to a lone ack. Sends share requests the same way.
   */
  async ack(delivery: DeliveryRef, result?: unknown): Promise<void> {
    const { id, receipt } = ref(delivery);
    const json = jsonBody(result === undefined ? { receipt } : { receipt, result });
    return this.#acks.run(withField('id', id, json), async () => {
      await this.#call('POST', `/v1/messages/${m(id)}/ack`, { json });
    });
  }

  async nack(delivery: DeliveryRef, options: NackOptions = {}): Promise<{ state: MessageState }> {
    const { id, receipt } = ref(delivery);
    return this.#call('POST', `/v1/messages/${m(id)}/nack`, { body: { ...(options ?? {}), receipt } });
  }

  async release(delivery: DeliveryRef): Promise<{ state: MessageState }> {
    const { id, receipt } = ref(delivery);
    return this.#call('POST', `/v1/messages/${m(id)}/release`, { body: { receipt } });
  }

  async extend(delivery: DeliveryRef, lease: Duration): Promise<{ leaseUntil: string }> {
    const { id, receipt } = ref(delivery);
    checkLease(lease);
    return this.#call('POST', `/v1/messages/${m(id)}/extend`, { body: { receipt, lease } });
  }

  async progress(delivery: DeliveryRef, value: unknown): Promise<void> {
    const { id, receipt } = ref(delivery);
    await this.#call('POST', `/v1/messages/${m(id)}/progress`, { body: { receipt, progress: value ?? null } });
  }

  work<P = unknown, R = unknown>(queue: string, handler: Handler<P, R>, options?: WorkOptions): Worker {
    checkQueueName(queue);
    this.#guard();
    if (typeof handler !== 'function') throw new InvalidRequestError('handler must be a function');
    const worker = new WorkerLoop<P, R>(
      {
        receive: (name, o) => this.#receive(`/v1/queues/${q(name)}/receive`, o),
        ack: (d, r) => this.ack(d, r),
        nack: (d, o) => this.nack(d, o),
        extend: (d, l) => this.extend(d, l),
        progress: (d, v) => this.progress(d, v),
        children: (id) => this.children(id),
        release: (d) => this.release(d),
        onCancel: (id, abort) => this.#cancels.watch(id, abort),
        now: () => Date.now(),
        idleWait: POLL_MS,
      },
      queue,
      handler,
      options,
    );
    this.#workers.add(worker);
    const close = worker.close.bind(worker);
    worker.close = (o) => close(o).finally(() => this.#workers.delete(worker));
    return worker;
  }

  async get(id: string): Promise<MessageInfo | null> {
    try {
      return await this.#call<MessageInfo>('GET', `/v1/messages/${m(id)}`);
    } catch (error) {
      if (error instanceof NotFoundError) return null;
      throw error;
    }
  }

  async cancel(id: string): Promise<{ state: MessageState }> {
    return this.#call('DELETE', `/v1/messages/${m(id)}`);
  }

  async retry(id: string): Promise<{ state: MessageState }> {
    return this.#call('POST', `/v1/messages/${m(id)}/retry`);
  }

  async list(queue: string, options: ListOptions = {}): Promise<MessagePage> {
    const path = `/v1/queues/${q(queue)}/messages`;
    const o = options ?? {};
    const state = o.state === undefined ? undefined : checkState(o.state);
    const limit = o.limit === undefined ? undefined : checkInteger(o.limit, 'limit', 1, 1000);
    const cursor = o.cursor ?? undefined;
    return this.#call('GET', path, { query: { state, limit, cursor } });
  }

  async stats(queue: string): Promise<QueueStats> {
    const { settings: _, ...stats } = await this.#call<QueueStats & { settings: QueueSettings }>(
      'GET',
      `/v1/queues/${q(queue)}`,
    );
    return stats;
  }

  async queues(): Promise<QueueStats[]> {
    return (await this.#call<{ queues: QueueStats[] }>('GET', '/v1/queues')).queues;
  }

  async configure(queue: string, config?: QueueConfig): Promise<QueueSettings> {
    const path = `/v1/queues/${q(queue)}`;
    if (config !== undefined) checkQueueConfig(config, queue);
    const answer = await this.#call<{ settings: QueueSettings }>(config === undefined ? 'GET' : 'PATCH', path, {
      ...(config === undefined ? {} : { body: config }),
    });
    return answer.settings;
  }

  async pause(queue: string): Promise<void> {
    await this.#call('PATCH', `/v1/queues/${q(queue)}`, { body: { paused: true } });
  }

  async resume(queue: string): Promise<void> {
    await this.#call('PATCH', `/v1/queues/${q(queue)}`, { body: { paused: false } });
  }

  async redrive(queue: string): Promise<{ moved: number }> {
    return this.#call('POST', `/v1/queues/${q(queue)}/redrive`);
  }

  async purge(queue: string, options: PurgeOptions = {}): Promise<{ purged: number }> {
    const path = `/v1/queues/${q(queue)}/messages`;
    const given = options?.state;
    const states = given === undefined ? undefined : (Array.isArray(given) ? given : [given]).map((s) => checkState(s));
    if (states && states.length === 0) throw new InvalidRequestError('purge state must name at least one state');
    return this.#call('DELETE', path, { query: { state: states?.join(',') } });
  }

  async subscribe(topic: string, queue: string): Promise<void> {
    await this.#call('PUT', `/v1/topics/${q(topic)}/subscriptions/${q(queue)}`);
  }

  async unsubscribe(topic: string, queue: string): Promise<void> {
    await this.#call('DELETE', `/v1/topics/${q(topic)}/subscriptions/${q(queue)}`);
  }

  async subscriptions(topic: string): Promise<string[]> {
    return (await this.#call<{ queues: string[] }>('GET', `/v1/topics/${q(topic)}/subscriptions`)).queues;
  }

  async publish(
    topic: string,
    payload: unknown,
    options?: SendOptions,
  ): Promise<{ messages: { queue: string; id: string }[] }> {
    const path = `/v1/topics/${q(topic)}/messages`;
    const publish = (o: SendOptions | undefined) =>
      this.#call<{ messages: { queue: string; id: string }[] }>('POST', path, {
        body: { ...(o ?? {}), payload: payload ?? null },
      });
    const tracer = ferryTracer();
    if (tracer === undefined || hasTraceContext(options?.headers)) return publish(options);
    return producerSpan(tracer, 'publish', topic, 1, (ctx) => publish(withTraceOptions(options, ctx)));
  }

  async schedule(name: string, definition: ScheduleDefinition): Promise<ScheduleInfo> {
    return this.#call('PUT', `/v1/schedules/${s(name)}`, { body: definition });
  }

  async unschedule(name: string): Promise<{ deleted: boolean }> {
    return this.#call('DELETE', `/v1/schedules/${s(name)}`);
  }

  async schedules(): Promise<ScheduleInfo[]> {
    return (await this.#call<{ schedules: ScheduleInfo[] }>('GET', '/v1/schedules')).schedules;
  }

  async putWebhook(name: string, definition: WebhookDefinition): Promise<WebhookInfo> {
    return this.#call('PUT', `/v1/webhooks/${w(name)}`, { body: definition });
  }

  async deleteWebhook(name: string): Promise<{ deleted: boolean }> {
    return this.#call('DELETE', `/v1/webhooks/${w(name)}`);
  }

  async webhooks(): Promise<WebhookInfo[]> {
    return (await this.#call<{ webhooks: WebhookInfo[] }>('GET', '/v1/webhooks')).webhooks;
  }

  async webhookDeliveries(name: string, options: WebhookDeliveriesOptions = {}): Promise<WebhookDelivery[]> {
    const limit = options?.limit === undefined ? undefined : checkInteger(options.limit, 'limit', 1, 100);
    const path = `/v1/webhooks/${w(name)}/deliveries`;
    return (await this.#call<{ deliveries: WebhookDelivery[] }>('GET', path, { query: { limit } })).deliveries;
  }

  events(options: EventsOptions = {}): EventStream {
    this.#guard();
    const o = options ?? {};
    if (o.queue !== undefined) checkQueueName(o.queue);
    if (o.types !== undefined) checkEventTypes(o.types);
    if (o.after !== undefined) checkInteger(o.after, 'after', 0, Number.MAX_SAFE_INTEGER);
    return new HttpEventStream(this.#http, o, this.#closing.signal);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    await Promise.all([...this.#workers].map((w) => w.close({ timeout: 5000 })));
    this.#closed = true;
    this.#closing.abort();
  }
}
