/**
 * Time, injected. The engine reads `now()` and sets its timers through a Clock, so tests of leases, backoff
 * and delays drive time instead of sleeping.
 */
export type TimerHandle = { readonly __timer: unique symbol } | object;

export interface Clock {
  /** Epoch milliseconds. */
  now(): number;
  setTimeout(callback: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle): void;
}

/** The machine's clock and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (callback, ms) => setTimeout(callback, ms),
  clearTimeout: (handle) => clearTimeout(handle as ReturnType<typeof setTimeout>),
};

/** A clock that moves only when told to: `advance(ms)` runs the timers that fall due, in order. */
export class ManualClock implements Clock {
  private current: number;
  private timers: { at: number; order: number; callback: () => void }[] = [];
  private order = 0;

  constructor(start = Date.UTC(2030, 0, 1)) {
    this.current = start;
  }

  now(): number {
    return this.current;
  }

  setTimeout(callback: () => void, ms: number): TimerHandle {
    const timer = { at: this.current + Math.max(0, ms), order: this.order++, callback };
    this.timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers = this.timers.filter((t) => t !== handle);
  }

  /**
   * Moves time forward, firing due timers in order. After each, it lets the event loop turn a few times, so
   * the asynchronous work a timer starts (a sweep, a store commit) finishes before time moves on.
   */
  async advance(ms: number): Promise<void> {
    const target = this.current + ms;
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.order - b.order);
      const next = this.timers[0];
      if (!next || next.at > target) break;
      this.timers.shift();
      this.current = Math.max(this.current, next.at);
      next.callback();
      for (let i = 0; i < 10; i++) await new Promise((resolve) => setImmediate(resolve));
    }
    this.current = target;
    await new Promise((resolve) => setImmediate(resolve));
  }
}
