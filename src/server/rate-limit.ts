/**
 * A token bucket per caller (per access token, or per address when the server has no tokens): `burst`
 * requests at once, refilled at `perSecond`. Buckets idle long enough to be full again are dropped, so the
 * map stays as small as the set of active callers.
 */

import { InvalidRequestError } from '../core/errors.ts';

export interface RateLimitOptions {
  /** Sustained requests per second per caller. */
  perSecond: number;
  /** Requests allowed at once. Default: 2 × perSecond. */
  burst?: number;
}

const PER: Record<string, number> = { s: 1, m: 60, h: 3600 };

/**
 * Parses `N/s` (also `N/m`, `N/h`), optionally with a burst, `N/s:B`: the `--rate-limit` flag. The burst
 * defaults to two seconds' worth, at least 1.
 */
export function parseRate(text: string): RateLimitOptions {
  const match = /^\s*(\d+(?:\.\d+)?)\s*\/\s*(s|m|h)\s*(?::\s*(\d+))?\s*$/.exec(text);
  const count = Number(match?.[1]);
  if (!match || !(count > 0)) {
    throw new InvalidRequestError(
      `a rate limit is N/s, N/m or N/h with an optional burst, e.g. 50/s or 600/m:100; got ${JSON.stringify(text)}`,
    );
  }
  const perSecond = count / (PER[match[2] as string] as number);
  return match[3] === undefined ? { perSecond } : { perSecond, burst: Number(match[3]) };
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
