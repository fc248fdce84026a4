/**
 * Webhook delivery, done by every process that opens the store with delivery on. Deliveries are ordinary
 * messages of an internal queue ({@link WEBHOOK_QUEUE}), so leases, retries with backoff, restarts and many
 * processes work as for any message:
 *
 * - **Fan-out.** After events commit (and on a 1 s timer), the events after the stored webhook cursor become
 *   one delivery message per event and matching endpoint, and the cursor moves, in one store transaction
 *   with a compare-and-set on the cursor: however many processes try, each event fans out once.
 * - **Delivery.** A loop on the internal queue POSTs each delivery (SSRF-guarded, 10 s bound): at most 16
 *   at once per process and 8 per endpoint, so an endpoint that hangs holds 8 slots, never all of them (a
 *   delivery to an endpoint at its limit is put back for a second, and the loop claims again only once a
 *   slot frees, so a backlog for a hanging endpoint is not churned). A lease means one process at a
 *   time; a failed attempt is retried with exponential backoff until 24 h after the event, then given up.
 *   Every attempt goes to the deliveries log.
 *
 * The internal queue's name cannot be a user's (names start with a letter or digit), is left out of
 * `queues()` and of event streams, and its events never fan out, so deliveries never beget deliveries.
 */
import type { Delivery, DeliveryRef, Duration, EventType, FerryEvent, NackOptions } from '../../core/types.ts';
import type { NewMessage, Store, WebhookRecord } from '../../store/store.ts';
import type { Clock } from '../clock.ts';
import { newId } from '../ids.ts';
import { WebhookClient } from './http.ts';
import { secretKey, signedHeaders } from './signature.ts';

/** The internal queue of deliveries. */
export const WEBHOOK_QUEUE = '~webhooks';
/** A delivery that has not succeeded this long after its event is given up. */
export const GIVE_UP_AFTER = 24 * 3_600_000;
/** Attempts kept in the deliveries log per webhook. */
export const ATTEMPTS_KEPT = 100;
/** Deliveries in flight per process. */
const CONCURRENCY = 16;
/** Deliveries in flight per endpoint and process. */
const PER_ENDPOINT = 8;
/** A delivery to an endpoint at its limit waits this long before it is claimed again. */
const DEFER = 1000;
/** The lease of a delivery: longer than a request may take, so it is never renewed. */
const LEASE = 60_000;
/** Events read per fan-out step. */
const FAN_OUT_BATCH = 500;
/** How often a process looks for endpoints and events when nothing woke it. */
const REFRESH = 1000;
/** Backoff between attempts: 5 s doubling to 1 h, with jitter (about 30 attempts in 24 h). */
const BACKOFF = Object.freeze({ type: 'exponential', delay: 5000, max: 3_600_000, jitter: true } as const);
/**
 * An endpoint receives events from its registration on, give or take this much: the clocks that stamp
 * events and registrations may be corrected (PostgreSQL's measured offset) or belong to other processes.
 */
const CLOCK_GRACE = 5000;
/** Finished deliveries are kept this long (the deliveries log is what users read). */
const RETENTION = 3_600_000;

interface DeliveryPayload {
  webhook: string;
  event: FerryEvent;
}

export interface RelayOptions {
  store: Store;
  clock: Clock;
  allowPrivate: boolean;
  /** The engine's calls on the internal queue (no user-queue name check). */
  receive(
    queue: string,
    options: { max: number; wait: Duration; lease: Duration; signal: AbortSignal },
  ): Promise<Delivery[]>;
  ack(delivery: DeliveryRef): Promise<void>;
  nack(delivery: DeliveryRef, options: NackOptions): Promise<unknown>;
}

export class WebhookRelay {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly client: WebhookClient;
  private hooks = new Map<string, WebhookRecord>();
  private timer: ReturnType<Clock['setTimeout']> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private looping: Promise<void> | undefined;
  private readonly stop = new AbortController();
  /** Deliveries in flight, in all and per endpoint. */
  private inFlight = 0;
  private readonly perEndpoint = new Map<string, number>();
  private readonly settling = new Set<Promise<void>>();
  private slotFreed: (() => void) | undefined;
  private closed = false;

  constructor(private readonly options: RelayOptions) {
    this.store = options.store;
    this.clock = options.clock;
    this.client = new WebhookClient(options.allowPrivate);
  }

  start(): void {
    this.tick();
  }

  /** Events committed (here or elsewhere): fan them out soon, unless they are deliveries' own. */
  notice(events: FerryEvent[]): void {
    if (this.closed || this.hooks.size === 0) return;
    if (events.some((e) => e.queue !== WEBHOOK_QUEUE)) this.fanOut();
  }

  /** An endpoint was put or deleted in this process: read them again now. */
  changed(): void {
    if (!this.closed) this.fanOut();
  }

  private tick(): void {
    this.fanOut();
    const timer = this.clock.setTimeout(() => {
      if (!this.closed) this.tick();
    }, REFRESH);
    (timer as { unref?: () => void }).unref?.();
    this.timer = timer;
  }

  /** One fan-out at a time per process; a request meanwhile runs one more pass after it. */
  private fanOut(): void {
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.pass();
        } catch {
          // Store unavailable: the timer tries again.
        }
      } while (this.again && !this.closed);
    })().finally(() => {
      this.running = undefined;
    });
  }

  private async pass(): Promise<void> {
    this.hooks = new Map((await this.store.listWebhooks()).map((h) => [h.name, h]));
    if (this.hooks.size === 0 || this.closed) return;
    this.startWorker();
    for (let round = 0; round < 20 && !this.closed; round++) {
      const cursor = await this.store.webhookCursor();
      const events = await this.store.readEvents(cursor, FAN_OUT_BATCH);
      const last = events[events.length - 1];
      if (!last) return;
      // The endpoints are read after the events: an endpoint put before any of these events committed is
      // then among them. Read before, one put meanwhile (while an earlier round or pass ran) would see the
      // cursor move past events committed after it was put, and never receive them.
      this.hooks = new Map((await this.store.listWebhooks()).map((h) => [h.name, h]));
      const now = this.clock.now();
      const deliveries: NewMessage[] = [];
      for (const event of events) {
        if (event.queue === WEBHOOK_QUEUE) continue;
        for (const hook of this.hooks.values()) {
          if (matches(hook, event)) deliveries.push(delivery(hook, event, now));
        }
      }
      // False: another process moved the cursor first; read from where it is now.
      const moved = await this.store.advanceWebhooks(cursor, last.seq, deliveries, now);
      if (moved && events.length < FAN_OUT_BATCH) return;
    }
  }

  private startWorker(): void {
    if (this.looping || this.closed) return;
    // Finished deliveries are not what users read (the deliveries log is): keep them an hour.
    void this.store.configure(WEBHOOK_QUEUE, { retention: RETENTION }).catch(() => {});
    this.looping = this.loop();
  }

  /** Claims deliveries for free slots and runs them; an endpoint at its limit gets its deliveries back later. */
  private async loop(): Promise<void> {
    while (!this.closed) {
      if (this.inFlight >= CONCURRENCY) {
        await new Promise<void>((resolve) => {
          this.slotFreed = resolve;
        });
        continue;
      }
      let claimed: Delivery[];
      try {
        claimed = await this.options.receive(WEBHOOK_QUEUE, {
          max: CONCURRENCY - this.inFlight,
          wait: 30_000,
          lease: LEASE,
          signal: this.stop.signal,
        });
      } catch {
        if (this.closed) return;
        await new Promise((resolve) => setTimeout(resolve, 1000)); // store unavailable: try again soon
        continue;
      }
      let deferred = false;
      for (const delivery of claimed) deferred = !this.dispatch(delivery) || deferred;
      if (deferred && this.inFlight > 0) {
        await new Promise<void>((resolve) => {
          this.slotFreed = resolve;
        });
      }
    }
  }

  /** Starts a delivery; false when its endpoint is at its limit and it was put back for later. */
  private dispatch(delivery: Delivery): boolean {
    const { webhook } = delivery.payload as DeliveryPayload;
    const busy = this.perEndpoint.get(webhook) ?? 0;
    if (busy >= PER_ENDPOINT) {
      const error = { message: `deferred: ${PER_ENDPOINT} deliveries to this endpoint are in flight` };
      this.track(this.options.nack(delivery, { delay: DEFER, error }));
      return false;
    }
    this.inFlight++;
    this.perEndpoint.set(webhook, busy + 1);
    this.track(
      this.run(delivery).finally(() => {
        this.inFlight--;
        const left = (this.perEndpoint.get(webhook) ?? 1) - 1;
        if (left === 0) this.perEndpoint.delete(webhook);
        else this.perEndpoint.set(webhook, left);
        this.slotFreed?.();
        this.slotFreed = undefined;
      }),
    );
    return true;
  }

  /** Settles are awaited on close; their failures (a lapsed lease, a store gone) leave the retry to the lease. */
  private track(work: Promise<unknown>): void {
    const done = work.then(
      () => {},
      () => {},
    );
    this.settling.add(done);
    void done.finally(() => this.settling.delete(done));
  }

  /** One attempt, logged; then the delivery is acked, retried after its backoff, or given up. */
  private async run(delivery: Delivery): Promise<void> {
    const { webhook, event } = delivery.payload as DeliveryPayload;
    let hook = this.hooks.get(webhook);
    if (!hook) {
      // Put in another process since the last refresh, or deleted: look once more.
      hook = (await this.store.listWebhooks()).find((h) => h.name === webhook);
      if (!hook) return this.options.ack(delivery); // deleted: nothing to deliver
    }
    const body = JSON.stringify(event);
    const started = this.clock.now();
    const headers = signedHeaders(secretKey(hook.secret), delivery.id, Math.floor(started / 1000), body);
    const t0 = performance.now();
    const { status, error } = await this.client.post(hook.url, headers, body, this.stop.signal);
    const durationMs = Math.round(performance.now() - t0);
    const givingUp = error !== null && this.clock.now() - Date.parse(delivery.sentAt) >= GIVE_UP_AFTER;
    await this.store
      .recordWebhookAttempts(
        [
          {
            webhook,
            deliveryId: delivery.id,
            seq: event.seq,
            type: event.type as EventType,
            queue: event.queue,
            messageId: event.id,
            attempt: delivery.attempt,
            status,
            error,
            outcome: error === null ? 'delivered' : givingUp ? 'gave_up' : 'retrying',
            at: started,
            durationMs,
          },
        ],
        ATTEMPTS_KEPT,
      )
      .catch(() => {});
    if (error === null) return this.options.ack(delivery);
    // retry false: dead at once; otherwise the delivery's backoff sets the next attempt.
    await this.options.nack(delivery, { error: { message: error }, retry: !givingUp });
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.stop.abort(); // requests in flight end now, as failed attempts retried later
    this.slotFreed?.();
    await this.running;
    await this.looping;
    while (this.settling.size > 0) await Promise.all(this.settling);
    await this.client.close();
  }
}

function matches(hook: WebhookRecord, event: FerryEvent): boolean {
  return (
    hook.types.includes(event.type) &&
    (hook.queues === null || hook.queues.includes(event.queue)) &&
    Date.parse(event.at) >= hook.createdAt - CLOCK_GRACE
  );
}

function delivery(hook: WebhookRecord, event: FerryEvent, now: number): NewMessage {
  return {
    id: newId(),
    queue: WEBHOOK_QUEUE,
    payload: JSON.stringify({ webhook: hook.name, event } satisfies DeliveryPayload),
    priority: 0,
    key: null,
    dedupeId: null,
    maxAttempts: 1000,
    backoff: BACKOFF,
    lease: LEASE,
    timeout: null,
    headers: null,
    runAt: now,
  };
}
