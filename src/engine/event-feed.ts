/**
 * One `events()` stream: replays the durable log after `after`, then follows live events, with no gap and no
 * duplicate (events are taken by seq, once). A consumer that falls more than BUFFER events behind is not
 * allowed to grow memory: its buffer is dropped and it catches up from the log instead.
 *
 * A `next()` that waits for an event holds the process open, as the socket of a stream over HTTP or
 * PostgreSQL does: the store's own timers are unref'd, so without it `for await (const e of ferry.events())`
 * would end the process (exit 13, an unsettled top-level await) as soon as nothing else kept it alive.
 */
import type { EventStream, FerryEvent } from '../core/types.ts';
import type { Store } from '../store/store.ts';
import type { Bus } from './bus.ts';

const BUFFER = 10_000;
const PAGE = 500;
/** Node's longest timer; the interval never fires in practice, it only holds the event loop open. */
const FOREVER = 2 ** 31 - 1;

export class EventFeed implements EventStream {
  private live: FerryEvent[] = [];
  private head = 0;
  private ready: FerryEvent[] = [];
  private cursor: number;
  private replay: boolean;
  private done = false;
  private wake: (() => void) | undefined;
  /** Ref'd only while a `next()` waits; cleared at close. */
  private readonly keepAlive = setInterval(() => {}, FOREVER).unref();
  private readonly unsubscribe: () => void;
  /** Where the stream starts: `after`, or the newest seq once subscribed (older live events are skipped). */
  private readonly start: Promise<number>;

  constructor(
    private readonly store: Store,
    bus: Bus,
    private readonly filter: (event: FerryEvent) => boolean,
    after: number | undefined,
    private readonly signal: AbortSignal,
    private readonly onClose: () => void,
  ) {
    this.cursor = after ?? -1;
    this.replay = after !== undefined;
    this.unsubscribe = bus.subscribe((event) => this.push(event));
    // Subscribed first, then read the newest seq: an event committed in between is both in `live` and at or
    // below that seq, so it is skipped, as one from before the stream began.
    this.start =
      after !== undefined
        ? Promise.resolve(after)
        : store.lastSeq().then((seq) => {
            if (this.cursor < 0) this.cursor = seq;
            return seq;
          });
    this.start.catch(() => this.close());
    if (signal.aborted) this.close();
    else signal.addEventListener('abort', this.abort, { once: true });
  }

  private readonly abort = () => this.close();

  private push(event: FerryEvent): void {
    if (this.done || !this.filter(event)) return;
    if (this.live.length - this.head >= BUFFER) {
      if (this.cursor < 0) this.cursor = (this.live[this.head] as FerryEvent).seq - 1;
      this.live = [];
      this.head = 0;
      this.replay = true;
    } else this.live.push(event);
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }

  since(): Promise<number> {
    return this.start;
  }

  async next(): Promise<IteratorResult<FerryEvent, undefined>> {
    await this.start.catch(() => undefined);
    for (;;) {
      if (this.done) return { done: true, value: undefined };
      const replayed = this.ready.shift();
      if (replayed) return { done: false, value: replayed };
      if (this.replay) {
        const page = await this.store.readEvents(this.cursor, PAGE);
        for (const event of page) {
          this.cursor = event.seq;
          if (this.filter(event)) this.ready.push(event);
        }
        if (page.length < PAGE) this.replay = false;
        continue;
      }
      while (this.head < this.live.length) {
        const event = this.live[this.head++] as FerryEvent;
        if (event.seq > this.cursor) {
          this.cursor = event.seq;
          if (this.head > 1024) {
            this.live = this.live.slice(this.head);
            this.head = 0;
          }
          return { done: false, value: event };
        }
      }
      this.live = [];
      this.head = 0;
      this.keepAlive.ref();
      try {
        await new Promise<void>((resolve) => {
          this.wake = resolve;
        });
      } finally {
        this.keepAlive.unref();
      }
    }
  }

  async return(): Promise<IteratorResult<FerryEvent, undefined>> {
    this.close();
    return { done: true, value: undefined };
  }

  [Symbol.asyncIterator](): AsyncIterator<FerryEvent, undefined> {
    return this;
  }

  close(): void {
    if (this.done) return;
    this.done = true;
    clearInterval(this.keepAlive);
    this.unsubscribe();
    this.signal.removeEventListener('abort', this.abort);
    this.onClose();
    const wake = this.wake;
    this.wake = undefined;
    wake?.();
  }
}
