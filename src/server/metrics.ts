/**
 * Prometheus metrics of one server, in its own registry (several servers may share a process in tests).
 * Message counts by state are read from the store at scrape time; everything else is counted from the
 * Ferry's event stream, so work done by any process on the same store shows, not only this server's.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { EventStream, Ferry, FerryEvent } from '../core/types.ts';

const STATES = ['pending', 'waiting', 'delayed', 'active', 'completed', 'dead', 'cancelled'] as const;
// send→start spans milliseconds (an idle worker) to hours (a backlog); processing, milliseconds to minutes.
const WAIT_BUCKETS = [0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600, 3600];
const RUN_BUCKETS = [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30, 120, 600];
/** Ids remembered between events to time them; beyond this the oldest are forgotten. */
const TRACKED = 100_000;

function isLeaseExpiry(event: FerryEvent): boolean {
  const error = event.error;
  return !!error && (error.name === 'LeaseExpired' || /lease (ran out|expired)/i.test(error.message));
}

export class Metrics {
  readonly registry = new Registry();
  readonly #events: Counter<'queue' | 'type'>;
  readonly #leaseExpiries: Counter<'queue'>;
  readonly #settles: Counter<'outcome'>;
  readonly #wait: Histogram<'queue'>;
  readonly #run: Histogram<'queue'>;
  readonly #http: Counter<'method' | 'route' | 'status'>;
  readonly #httpTime: Histogram<'method' | 'route'>;
  readonly #sentAt = new Map<string, number>();
  readonly #startedAt = new Map<string, number>();
  #stream: EventStream | null = null;

  constructor(private readonly ferry: Ferry) {
    const registers = [this.registry];
    new Gauge({
      name: 'ferry_messages',
      help: 'Messages by queue and state',
      labelNames: ['queue', 'state'],
      registers,
      collect: async function (this: Gauge<'queue' | 'state'>) {
        this.reset();
        for (const stats of await ferry.queues()) {
          for (const state of STATES) this.set({ queue: stats.name, state }, stats[state]);
        }
      },
    });
    this.#events = new Counter({
      name: 'ferry_events_total',
      help: 'State changes by queue and type: sent (sends), active (deliveries), completed (acks), retrying (nacks and expiries), dead, cancelled, progress',
      labelNames: ['queue', 'type'],
      registers,
    });
    this.#leaseExpiries = new Counter({
      name: 'ferry_lease_expiries_total',
      help: 'Deliveries whose lease ran out without an ack',
      labelNames: ['queue'],
      registers,
    });
    this.#settles = new Counter({
      name: 'ferry_http_settles_total',
      help: 'Acks and nacks received over HTTP by this server',
      labelNames: ['outcome'],
      registers,
    });
    this.#wait = new Histogram({
      name: 'ferry_send_to_start_seconds',
      help: 'Time from send to first delivery',
      labelNames: ['queue'],
      buckets: WAIT_BUCKETS,
      registers,
    });
    this.#run = new Histogram({
      name: 'ferry_processing_seconds',
      help: 'Time from delivery to ack or failure',
      labelNames: ['queue'],
      buckets: RUN_BUCKETS,
      registers,
    });
    this.#http = new Counter({
      name: 'ferry_http_requests_total',
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#httpTime = new Histogram({
      name: 'ferry_http_request_duration_seconds',
      help: 'HTTP request duration by route',
      labelNames: ['method', 'route'],
      buckets: [0.001, 0.005, 0.025, 0.1, 0.5, 1, 5, 30, 60],
      registers,
    });
  }

  /** Follows the event stream until {@link stop}. */
  start(): void {
    const stream = this.ferry.events();
    this.#stream = stream;
    (async () => {
      for await (const event of stream) this.#observe(event);
    })().catch(() => {
      // The stream ends with the Ferry; metrics are best-effort and never take the server down.
    });
  }

  stop(): void {
    this.#stream?.close();
    this.#stream = null;
  }

  http(method: string, route: string, status: number, seconds: number): void {
    this.#http.inc({ method, route, status: String(status) });
    this.#httpTime.observe({ method, route }, seconds);
  }

  settled(outcome: 'ack' | 'nack'): void {
    this.#settles.inc({ outcome });
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  #remember(map: Map<string, number>, id: string, at: number): void {
    if (map.size >= TRACKED) {
      const oldest = map.keys().next().value;
      if (oldest !== undefined) map.delete(oldest);
    }
    map.set(id, at);
  }

  #observe(event: FerryEvent): void {
    const { queue, type, id } = event;
    this.#events.inc({ queue, type });
    const at = Date.parse(event.at);
    if (type === 'sent') this.#remember(this.#sentAt, id, at);
    else if (type === 'active') {
      const sent = this.#sentAt.get(id);
      if (sent !== undefined) {
        this.#sentAt.delete(id);
        this.#wait.observe({ queue }, Math.max(0, at - sent) / 1000);
      }
      this.#remember(this.#startedAt, id, at);
    } else if (type === 'completed' || type === 'retrying' || type === 'dead' || type === 'cancelled') {
      const started = this.#startedAt.get(id);
      if (started !== undefined) {
        this.#startedAt.delete(id);
        this.#run.observe({ queue }, Math.max(0, at - started) / 1000);
      }
      this.#sentAt.delete(id);
      if (isLeaseExpiry(event)) this.#leaseExpiries.inc({ queue });
    }
  }
}
