/**
 * A token bucket per caller (per access token, or per address when the server has no tokens): `burst`
 * requests at once, refilled at `perSecond`. Buckets idle long enough to be full again are dropped, so the
 * map stays as small as the set of active callers.
 */

export interface RateLimitOptions {
  /** Sustained requests per second per caller. */
  perSecond: number;
  /** Requests allowed at once. Default: 2 × perSecond. */
  burst?: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

export class RateLimiter {
  readonly #rate: number;
  readonly #burst: number;
  readonly #buckets = new Map<string, Bucket>();
  #lastSweep = 0;

  constructor(options: RateLimitOptions) {
    if (!(options.perSecond > 0)) throw new RangeError('rateLimit.perSecond must be a positive number');
    this.#rate = options.perSecond / 1000;
    this.#burst = Math.max(1, options.burst ?? options.perSecond * 2);
  }

  /** 0 when the request may go on, else milliseconds until it would be allowed. */
  take(key: string, now = Date.now()): number {
    this.#sweep(now);
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      bucket = { tokens: this.#burst, at: now };
      this.#buckets.set(key, bucket);
    } else {
      bucket.tokens = Math.min(this.#burst, bucket.tokens + (now - bucket.at) * this.#rate);
      bucket.at = now;
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return 0;
    }
    return Math.ceil((1 - bucket.tokens) / this.#rate);
  }

  #sweep(now: number): void {
    const full = this.#burst / this.#rate;
    if (now - this.#lastSweep < full) return;
    this.#lastSweep = now;
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.at >= full) this.#buckets.delete(key);
    }
  }
}
