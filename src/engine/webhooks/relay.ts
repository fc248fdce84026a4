/**
 * Webhook delivery, done by every process that opens the store with delivery on. Deliveries are ordinary
 * messages of an internal queue ({@link WEBHOOK_QUEUE}), so leases, retries with backoff, restarts and many
 * processes work as for any message:
 *
 * - **Fan-out.** After events commit (and on a 1 s timer), the events after the stored webhook cursor become
 *   one delivery message per event and matching endpoint, and the cursor moves, in one store transaction
 *   with a compare-and-set on the cursor: however many processes try, each event fans out once.
 * - **Delivery.** A worker on the internal queue POSTs each delivery (SSRF-guarded, 10 s bound, bounded
 *   concurrency, no prefetch so idle processes share the work). A lease means one process at a time; a
 *   failed attempt is retried with exponential backoff until 24 h after the event, then given up. Every
 *   attempt goes to the deliveries log.
 *
 * The internal queue's name cannot be a user's (names start with a letter or digit), is left out of
 * `queues()` and of event streams, and its events never fan out, so deliveries never beget deliveries.
 */

import { UnrecoverableError } from '../../core/errors.ts';
import type { EventType, FerryEvent, Handler, Job, Worker, WorkOptions } from '../../core/types.ts';
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
/** Events read per fan-out step. */
const FAN_OUT_BATCH = 500;
/** How often a process looks for endpoints and events when nothing woke it. */
const REFRESH = 1000;
/** Backoff between attempts: 5 s doubling to 1 h, with jitter (about 30 attempts in 24 h). */
const BACKOFF = Object.freeze({ type: 'exponential', delay: 5000, max: 3_600_000, jitter: true } as const);
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
  /** Starts a worker on the internal queue (the engine's worker loop, without the user-queue name check). */
  startWorker: (queue: string, handler: Handler<DeliveryPayload, void>, options: WorkOptions) => Worker;
  /** Wakes the consumers waiting on a queue of this process. */
  wake: (queue: string) => void;
}

export class WebhookRelay {
  private readonly store: Store;
  private readonly clock: Clock;
  private readonly client: WebhookClient;
  private hooks = new Map<string, WebhookRecord>();
  private timer: ReturnType<Clock['setTimeout']> | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private worker: Worker | undefined;
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
      // The commit woke waiting workers, but one whose empty claim shared that commit starts waiting only
      // after it (it would then sleep a poll interval): wake again once it does.
      if (moved && deliveries.length > 0) setImmediate(() => this.options.wake(WEBHOOK_QUEUE));
      if (moved && events.length < FAN_OUT_BATCH) return;
    }
  }

  private startWorker(): void {
    if (this.worker || this.closed) return;
    // Finished deliveries are not what users read (the deliveries log is): keep them an hour.
    void this.store.configure(WEBHOOK_QUEUE, { retention: RETENTION }).catch(() => {});
    this.worker = this.options.startWorker(WEBHOOK_QUEUE, (job) => this.deliver(job), {
      concurrency: CONCURRENCY,
      prefetch: 0,
      onError: () => {},
    });
  }

  private async deliver(job: Job<DeliveryPayload>): Promise<void> {
    const { webhook, event } = job.payload;
    let hook = this.hooks.get(webhook);
    if (!hook) {
      // Put in another process since the last refresh, or deleted: look once more.
      hook = (await this.store.listWebhooks()).find((h) => h.name === webhook);
      if (!hook) return; // deleted: nothing to deliver
    }
    const body = JSON.stringify(event);
    const started = this.clock.now();
    const headers = signedHeaders(secretKey(hook.secret), job.id, Math.floor(started / 1000), body);
    const t0 = performance.now();
    const { status, error } = await this.client.post(hook.url, headers, body, job.signal);
    const durationMs = Math.round(performance.now() - t0);
    const ok = error === null;
    const givingUp = !ok && this.clock.now() - Date.parse(job.sentAt) >= GIVE_UP_AFTER;
    await this.store
      .recordWebhookAttempts(
        [
          {
            webhook,
            deliveryId: job.id,
            seq: event.seq,
            type: event.type as EventType,
            queue: event.queue,
            messageId: event.id,
            attempt: job.attempt,
            status,
            error,
            outcome: ok ? 'delivered' : givingUp ? 'gave_up' : 'retrying',
            at: started,
            durationMs,
          },
        ],
        ATTEMPTS_KEPT,
      )
      .catch(() => {});
    if (ok) return;
    if (givingUp) throw new UnrecoverableError(`gave up after 24 h: ${error}`);
    throw new Error(error ?? 'delivery failed');
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) this.clock.clearTimeout(this.timer);
    await this.running;
    await this.worker?.close({ timeout: 5000 });
    await this.client.close();
  }
}

function matches(hook: WebhookRecord, event: FerryEvent): boolean {
  return (
    hook.types.includes(event.type) &&
    (hook.queues === null || hook.queues.includes(event.queue)) &&
    Date.parse(event.at) >= hook.createdAt
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
    lease: 60_000,
    headers: null,
    runAt: now,
  };
}
