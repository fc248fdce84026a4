import type { BackoffSettings } from '../store/store.ts';

/**
 * The wait after failed attempt `attempt` (1-based). Exponential doubles from `delay` up to `max`; with
 * jitter each wait is drawn from [half, all] of it, so a burst of failures does not retry in lockstep.
 */
export function retryDelay(attempt: number, backoff: BackoffSettings, random: () => number): number {
  if (backoff.type === 'fixed') return backoff.delay;
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const full = Math.min(backoff.max, backoff.delay * 2 ** exponent);
  return backoff.jitter ? Math.round(full / 2 + (random() * full) / 2) : full;
}
