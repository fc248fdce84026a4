/**
 * The `work()` loop, written over the public calls (receive, ack, nack, extend) so the engine and the HTTP
 * client share it. Keeps up to `concurrency` handlers running, renews leases while they run, aborts a job's
 * signal when its message is cancelled or its lease is lost, and drains on close within a bound.
 *
 * A slot frees when the handler returns, before its ack commits: the ack and the next claim then share one
 * group commit, which is what lets a batch of handlers cost one transaction per cycle.
 */
import { type Context, context, ROOT_CONTEXT, type Span } from '@opentelemetry/api';
import { parseDuration } from '../core/duration.ts';
import {
  InvalidRequestError,
  LeaseLostError,
  PayloadTooLargeError,
  TimeoutError,
  toFailure,
  UnavailableError,
  UnrecoverableError,
} from '../core/errors.ts';
import type {
  Delivery,
  DeliveryRef,
  Duration,
  FailureInfo,
  Handler,
  Job,
  MessageInfo,
  NackOptions,
  Worker,
  WorkOptions,
} from '../core/types.ts';
import { checkInteger, checkLease, checkOptions, checkTimeout, MAX_RECEIVE } from '../core/validate.ts';
import { ferryTracer, recordFailure, startProcessSpan } from './tracing.ts';

/**
 * A delivery may carry its lease end in epoch ms under this symbol (the in-process engine sets it), sparing
 * the worker a parse of the ISO string on every message. Symbols never reach JSON.
 */
export const LEASE_UNTIL_MS: unique symbol = Symbol('ferry.leaseUntilMs');

/** What the loop needs of a Ferry. Browser-safe: no `node:` imports here. */
export interface WorkerHost {
  receive(
    queue: string,
    options: { max: number; wait: Duration; lease?: Duration; timeout?: Duration; signal?: AbortSignal },
  ): Promise<Delivery[]>;
  ack(delivery: DeliveryRef, result?: unknown): Promise<void>;
  nack(delivery: DeliveryRef, options?: NackOptions): Promise<unknown>;
  extend(delivery: DeliveryRef, lease: Duration): Promise<{ leaseUntil: string }>;
  progress(delivery: DeliveryRef, value: unknown): Promise<void>;
  release(delivery: DeliveryRef): Promise<unknown>;
  /** The flow children of message `id` (`job.children()`). */
  children(id: string): Promise<MessageInfo[]>;
  /** Calls `abort` when message `id` is cancelled while it runs; returns an unsubscribe. */
  onCancel?(id: string, abort: () => void): () => void;
  /**
   * Settles the queue's expired leases now: called at an attempt's deadline, so a timeout is recorded then
   * rather than at the next sweep. Absent (over HTTP): the server's sweep and claims settle it.
   */
  expire?(queue: string): Promise<unknown>;
  now(): number;
  /** How long one receive waits for work before the loop asks again. */
  idleWait: number;
}

export interface Running {
  delivery: Delivery;
  /** Created when the handler first reads `job.signal`, or when it must abort: most handlers never look. */
  controller: AbortController | undefined;
  abortReason?: unknown;
  lease: number;
  leaseUntil: number;
  /** When the attempt times out (epoch ms), or null. */
  deadline: number | null;
  renewing: boolean;
  unwatch?: () => void;
  /** The attempt's trace context, while a tracer is registered: its lease renewals run in it. */
  trace?: Context;
}

export class WorkerLoop<P, R> implements Worker {
  readonly queue: string;
  private readonly concurrency: number;
  private readonly lease: Duration | undefined;
  private readonly timeout: Duration | undefined;
  private readonly onError: (error: unknown) => void;
  /** The `prefetch` option, when given; else the loop sizes `prefetch` by itself (see `adapt`). */
  private readonly fixedPrefetch: number | undefined;
  private prefetch: number;
  /** Round trip of receives that returned messages, ms (moving average), and handlers finished per ms. */
  private roundTrip = 0;
  private finishRate = 0;
  private finished = 0;
  private sampledAt = performance.now();
  /**
   * Handlers running, by receipt: one message can be in hand twice (its lease ran out while a stalled handler
   * still ran, and this worker got it again), and the two must not be confused.
   */
  private readonly jobs = new Map<string, Running>();
  /** Claimed and leased, waiting for a free handler slot, in delivery order; by receipt too. */
  private readonly buffered = new Map<string, Running>();
  private settling = 0;
  private readonly stop = new AbortController();
  private slotFree: (() => void) | undefined;
  /** Receives in flight, and how many messages they asked for. */
  private readonly receives = new Set<Promise<void>>();
  private asking = 0;
  private failures = 0;
  private expiring = false;
  private expireAgain = false;
  private drained: (() => void) | undefined;
  private renewTimer: ReturnType<typeof setInterval> | undefined;
  private renewEvery = Number.POSITIVE_INFINITY;
  private loopDone: Promise<void>;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly host: WorkerHost,
    queue: string,
    private readonly handler: Handler<P, R>,
    options: WorkOptions = {},
  ) {
    this.queue = queue;
    checkOptions(options, ['concurrency', 'prefetch', 'lease', 'timeout', 'onError']);
    this.concurrency =
      options.concurrency === undefined ? 1 : checkInteger(options.concurrency, 'concurrency', 1, 10_000);
    this.fixedPrefetch =
      options.prefetch === undefined ? undefined : checkInteger(options.prefetch, 'prefetch', 0, 10_000);
    this.prefetch = this.fixedPrefetch ?? this.concurrency;
    if (options.lease !== undefined) checkLease(options.lease);
    this.lease = options.lease;
    if (options.timeout !== undefined) checkTimeout(options.timeout);
    this.timeout = options.timeout;
    this.onError = options.onError ?? ((error) => console.error(`ferry worker (${queue}):`, error));
    // The loop's polls belong to no caller's trace: work() called inside a span must not parent them all.
    this.loopDone = context.with(ROOT_CONTEXT, () => this.loop());
  }

  get running(): number {
    return this.jobs.size;
  }

  /**
   * Keeps the worker fed. Up to two receives may be in flight, so on a store a round trip away the next batch
   * is being fetched while the last one runs; what they asked for counts against the room left.
   */
  private async loop(): Promise<void> {
    while (!this.stop.signal.aborted) {
      const free = this.concurrency + this.prefetch - this.jobs.size - this.buffered.size - this.asking;
      const busy = this.buffered.size > 0 || this.receives.size > 0;
      // With messages in hand or on their way, fetch again only once half a batch is free: fewer, larger claims.
      if (free <= 0 || this.receives.size >= 2 || (busy && free < Math.ceil(this.concurrency / 2))) {
        await new Promise<void>((resolve) => {
          this.slotFree = resolve;
        });
        continue;
      }
      // One receive asks for at most MAX_RECEIVE; a worker with more room fills it over several.
      const fetching = this.fetch(Math.min(free, MAX_RECEIVE));
      this.receives.add(fetching);
      void fetching.finally(() => this.receives.delete(fetching));
      if (this.failures > 0) await fetching; // while the store fails, one attempt at a time, with backoff
    }
    // Let receives in flight land (their deliveries are held, then released by close) before shutdown goes on.
    await Promise.all([...this.receives]);
  }

  private async fetch(max: number): Promise<void> {
    this.asking += max;
    const started = performance.now();
    try {
      const deliveries = await this.host.receive(this.queue, {
        max,
        wait: this.host.idleWait,
        signal: this.stop.signal,
        ...(this.lease === undefined ? {} : { lease: this.lease }),
        ...(this.timeout === undefined ? {} : { timeout: this.timeout }),
      });
      this.failures = 0;
      if (deliveries.length > 0) this.adapt(performance.now() - started);
      for (const delivery of deliveries) this.hold(delivery);
      this.pump();
    } catch (error) {
      if (this.stop.signal.aborted) return;
      this.onError(error);
      // Back off while the store is unavailable, up to 5 s, then try again: the loop never dies.
      this.failures++;
      await new Promise((resolve) => setTimeout(resolve, Math.min(5000, 100 * 2 ** this.failures)));
    } finally {
      this.asking -= max;
      const wake = this.slotFree;
      this.slotFree = undefined;
      wake?.();
    }
  }

  /**
   * Without a `prefetch` option, keeps about two round trips of work in hand: quick handlers then share large
   * claims (one statement and commit for hundreds of messages), while slow ones hold no more than their
   * concurrency, so messages never wait leased in one worker while another is idle. Between the concurrency
   * and twenty times it (ten measured 6% slower on PostgreSQL at concurrency 50: `npm run bench:peers`), by
   * the measured round trip (of receives that found messages: a long poll's wait is not
   * a round trip) and the rate at which handlers finish.
   */
  private adapt(roundTrip: number): void {
    if (this.fixedPrefetch !== undefined) return;
    this.roundTrip = this.roundTrip === 0 ? roundTrip : 0.7 * this.roundTrip + 0.3 * roundTrip;
    const now = performance.now();
    const span = now - this.sampledAt;
    if (span >= 20) {
      const rate = this.finished / span;
      this.finishRate = this.finishRate === 0 ? rate : 0.7 * this.finishRate + 0.3 * rate;
      this.finished = 0;
      this.sampledAt = now;
    }
    const wanted = Math.ceil(this.finishRate * this.roundTrip * 2);
    this.prefetch = Math.min(Math.max(wanted, this.concurrency), 20 * this.concurrency);
  }

  /** Takes a delivery in hand: leased, renewed, watched for cancellation; started when a slot is free. */
  private hold(delivery: Delivery): void {
    const leaseUntil =
      (delivery as Delivery & { [LEASE_UNTIL_MS]?: number })[LEASE_UNTIL_MS] ?? Date.parse(delivery.leaseUntil);
    const deadline = delivery.deadline ? Date.parse(delivery.deadline) : null;
    const running: Running = {
      delivery,
      controller: undefined,
      lease: Math.max(100, leaseUntil - this.host.now()),
      leaseUntil,
      deadline,
      renewing: false,
    };
    this.buffered.set(delivery.receipt, running);
    if (this.host.onCancel) {
      running.unwatch = this.host.onCancel(delivery.id, () => {
        // Not started yet: hand it back, which ends it cancelled. Started: the handler's signal fires.
        if (this.buffered.delete(delivery.receipt)) this.giveBack(running);
        else abort(running, new Error('message cancelled'));
      });
    }
    if (deadline !== null) this.watchDeadline(running, deadline);
    this.scheduleRenewal(running.lease);
  }

  /**
   * At the attempt's deadline the store fails it (a TimeoutError): the handler's signal fires, a delivery
   * still waiting for a slot is dropped, and the host is asked to settle the queue's expired leases at once.
   */
  private watchDeadline(running: Running, deadline: number): void {
    const timer = setTimeout(
      () => {
        const unwatch = running.unwatch;
        running.unwatch = undefined;
        unwatch?.();
        if (this.buffered.delete(running.delivery.receipt)) {
          // Never started: nothing to tell.
        } else {
          abort(running, new TimeoutError(`the attempt ran past its deadline (${running.delivery.deadline})`));
        }
        this.expire();
      },
      // One ms past the deadline: leases end at it, and the store settles those that ended by `now`.
      Math.max(0, deadline - this.host.now() + 1),
    );
    const unwatch = running.unwatch;
    running.unwatch = () => {
      clearTimeout(timer);
      unwatch?.();
    };
  }

  /**
   * Asks the host to settle the queue's expired leases. Deadlines of one claim fall together: while one
   * call is in flight, the others make one more call after it, not one each.
   */
  private expire(): void {
    if (!this.host.expire) return;
    if (this.expiring) {
      this.expireAgain = true;
      return;
    }
    this.expiring = true;
    this.host
      .expire(this.queue)
      .catch(this.onError)
      .finally(() => {
        this.expiring = false;
        if (!this.expireAgain) return;
        this.expireAgain = false;
        this.expire();
      });
  }

  /** Starts buffered deliveries while handler slots are free. */
  private pump(): void {
    if (this.stop.signal.aborted) return;
    for (const [id, running] of this.buffered) {
      if (this.jobs.size >= this.concurrency) return;
      this.buffered.delete(id);
      this.start(running);
    }
  }

  private giveBack(running: Running): void {
    running.unwatch?.();
    this.settling++;
    this.host.release(running.delivery).then(this.settled, this.settleFailed);
  }

  private start(running: Running): void {
    const tracer = ferryTracer();
    if (tracer === undefined) {
      this.run(running, undefined);
      return;
    }
    // The handler, and its ack or nack, run in the attempt's CONSUMER span.
    const { span, ctx } = startProcessSpan(tracer, running.delivery);
    running.trace = ctx;
    context.with(ctx, () => this.run(running, span));
  }

  private run(running: Running, span: Span | undefined): void {
    const delivery = running.delivery;
    this.jobs.set(delivery.receipt, running);
    let outcome: Promise<unknown>;
    try {
      outcome = Promise.resolve(this.handler(new RunningJob<P>(this, running)));
    } catch (error) {
      outcome = Promise.reject(error);
    }
    outcome.then(
      (result) =>
        this.settle(
          running,
          traced(
            span,
            this.persist(running, () => this.ackOrFail(delivery, result)),
          ),
        ),
      (error: unknown) => {
        const retry = !(error instanceof UnrecoverableError);
        const failure = toFailure(error);
        if (span) recordFailure(span, error);
        this.settle(
          running,
          traced(
            span,
            this.persist(running, () => this.nackOrPlain(delivery, failure, retry)),
          ),
        );
      },
    );
  }

  /**
   * Runs a settle (ack or nack), trying again while the store is unavailable (a database restart, a network
   * cut) and the lease still holds: the receipt stays valid, so the handler's work is not lost to a blip.
   */
  private async persist(running: Running, settle: () => Promise<unknown>): Promise<unknown> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await settle();
      } catch (error) {
        const wait = Math.min(2000, 50 * 2 ** attempt);
        if (!(error instanceof UnavailableError) || this.host.now() + wait >= running.leaseUntil) throw error;
        await new Promise((resolve) => setTimeout(resolve, wait));
      }
    }
  }

  /**
   * Acks with the handler's result; a result that cannot be stored (not JSON, too large) ends the attempt
   * failed and the message dead, with the reason, rather than leaving it leased until the lease runs out.
   */
  private ackOrFail(delivery: Delivery, result: unknown): Promise<unknown> {
    return this.host.ack(delivery, result).catch((error: unknown) => {
      if (!unstorable(error)) throw error;
      const failure = { message: `the handler's result could not be stored: ${error.message}`, name: error.name };
      return this.host.nack(delivery, { error: failure, retry: false });
    });
  }

  /**
   * A nack whose error cannot be stored (its `data` too large or nested too deep) is made again with the
   * message and name alone, saying why, so the attempt still ends as the handler's failure and not, a lease
   * later, as an expiry.
   */
  private nackOrPlain(delivery: Delivery, failure: FailureInfo, retry: boolean): Promise<unknown> {
    return this.host.nack(delivery, { error: failure, retry }).catch((error: unknown) => {
      if (!unstorable(error)) throw error;
      const message = `${failure.message.slice(0, 10_000)} (its data could not be stored: ${error.message})`;
      return this.host.nack(delivery, {
        error: failure.name === undefined ? { message } : { message, name: failure.name },
        retry,
      });
    });
  }

  /** `job.extend()`: extends now and renews by the new length from then on. */
  async extendJob(running: Running, lease: Duration): Promise<void> {
    const ms = checkLease(lease);
    const { leaseUntil } = await this.host.extend(running.delivery, lease);
    running.lease = ms;
    running.leaseUntil = Date.parse(leaseUntil);
    this.scheduleRenewal(ms);
  }

  progressJob(running: Running, value: unknown): Promise<void> {
    return this.host.progress(running.delivery, value);
  }

  childrenOf(id: string): Promise<MessageInfo[]> {
    return this.host.children(id);
  }

  private settle(running: Running, settled: Promise<unknown>): void {
    this.jobs.delete(running.delivery.receipt);
    this.finished++;
    running.unwatch?.();
    this.settling++;
    settled.then(this.settled, this.settleFailed);
    this.pump();
    const wake = this.slotFree;
    this.slotFree = undefined;
    wake?.();
    if (this.jobs.size === 0 && this.buffered.size === 0 && this.renewTimer) {
      clearInterval(this.renewTimer);
      this.renewTimer = undefined;
      this.renewEvery = Number.POSITIVE_INFINITY;
    }
  }

  private readonly settled = (): void => {
    if (--this.settling === 0 && this.jobs.size === 0) this.drained?.();
  };

  private readonly settleFailed = (error: unknown): void => {
    // A stale receipt means the lease was lost: the message is redelivered or settled elsewhere.
    if (!(error instanceof LeaseLostError)) this.onError(error);
    this.settled();
  };

  /** One timer per worker, ticking at a quarter of the shortest lease in hand, renews what is past a third. */
  private scheduleRenewal(lease: number): void {
    const every = Math.max(20, Math.floor(lease / 4));
    if (this.renewTimer && every >= this.renewEvery) return;
    if (this.renewTimer) clearInterval(this.renewTimer);
    this.renewEvery = every;
    this.renewTimer = setInterval(() => this.renew(), every);
  }

  private renew(): void {
    const now = this.host.now();
    for (const running of [...this.jobs.values(), ...this.buffered.values()]) {
      if (running.renewing || running.leaseUntil - now > (running.lease * 2) / 3) continue;
      // A lease that reached the attempt's deadline cannot be moved further.
      if (running.deadline !== null && running.leaseUntil >= running.deadline) continue;
      running.renewing = true;
      const extending = running.trace
        ? context.with(running.trace, () => this.host.extend(running.delivery, running.lease))
        : this.host.extend(running.delivery, running.lease);
      extending.then(
        ({ leaseUntil }) => {
          running.leaseUntil = Date.parse(leaseUntil);
          running.renewing = false;
        },
        (error: unknown) => {
          running.renewing = false;
          if (!(error instanceof LeaseLostError)) return this.onError(error);
          // Lost while waiting in hand: drop it (it is redelivered); while running: the handler's signal fires.
          if (this.buffered.delete(running.delivery.receipt)) running.unwatch?.();
          else abort(running, error);
        },
      );
    }
  }

  close(options: { timeout?: Duration } = {}): Promise<void> {
    if (!this.closing) this.closing = this.shutdown(parseDuration(options.timeout ?? 30_000, 'timeout'));
    return this.closing;
  }

  private async shutdown(timeout: number): Promise<void> {
    this.stop.abort();
    this.slotFree?.();
    await this.loopDone;
    // What was fetched but not started goes back at once, its attempt not counted.
    for (const running of this.buffered.values()) this.giveBack(running);
    this.buffered.clear();
    if (this.jobs.size > 0 || this.settling > 0) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        new Promise<void>((resolve) => {
          this.drained = resolve;
        }),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeout);
        }),
      ]);
      clearTimeout(timer);
      for (const running of this.jobs.values()) {
        abort(running, new Error('worker closed'));
        // No deadline or cancel watch outlives the worker: the store settles what is left in hand.
        running.unwatch?.();
        running.unwatch = undefined;
      }
    }
    if (this.renewTimer) clearInterval(this.renewTimer);
  }
}

/** Ends the attempt's span once its ack or nack settled; a settle that failed is recorded on it. */
function traced(span: Span | undefined, settled: Promise<unknown>): Promise<unknown> {
  if (span === undefined) return settled;
  return settled.then(
    (value) => {
      span.end();
      return value;
    },
    (error: unknown) => {
      recordFailure(span, error);
      span.end();
      throw error;
    },
  );
}

function abort(running: Running, reason: unknown): void {
  running.controller ??= new AbortController();
  running.controller.abort(reason);
}

/** The `job` a handler receives: methods on the prototype, not closures per message. */
class RunningJob<P> implements Job<P> {
  readonly id: string;
  readonly queue: string;
  readonly payload: P;
  readonly attempt: number;
  readonly key: string | null;
  readonly priority: number;
  readonly headers: Record<string, string>;
  readonly sentAt: string;
  readonly receipt: string;
  readonly deadline: string | null;

  constructor(
    private readonly worker: WorkerLoop<P, unknown>,
    private readonly running: Running,
  ) {
    const d = running.delivery;
    this.id = d.id;
    this.queue = d.queue;
    this.payload = d.payload as P;
    this.attempt = d.attempt;
    this.key = d.key;
    this.priority = d.priority;
    this.headers = d.headers;
    this.sentAt = d.sentAt;
    this.receipt = d.receipt;
    this.deadline = d.deadline;
  }

  get signal(): AbortSignal {
    this.running.controller ??= new AbortController();
    return this.running.controller.signal;
  }

  progress(value: unknown): Promise<void> {
    return this.worker.progressJob(this.running, value);
  }

  extend(lease: Duration): Promise<void> {
    return this.worker.extendJob(this.running, lease);
  }

  children(): Promise<MessageInfo[]> {
    return this.worker.childrenOf(this.id);
  }
}

/** A settle refused for what it would store (a result or error too large, nested too deep, not JSON). */
function unstorable(error: unknown): error is InvalidRequestError | PayloadTooLargeError {
  return error instanceof InvalidRequestError || error instanceof PayloadTooLargeError;
}
