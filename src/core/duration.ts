import { InvalidRequestError } from './errors.ts';
import type { Duration } from './types.ts';

const UNITS: Record<string, number> & { d: number } = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PATTERN = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;

/**
 * Parses a duration (whole milliseconds, or `"250ms"`, `"30s"`, `"5m"`, `"2h"`, `"7d"`) into milliseconds,
 * checking it lies within [min, max]. `what` names the argument in the error message.
 */
export function parseDuration(value: Duration, what: string, min = 0, max = 365 * UNITS.d): number {
  let ms: number;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new InvalidRequestError(`${what} must be whole milliseconds, got ${value}`);
    ms = value;
  } else if (typeof value === 'string') {
    const match = PATTERN.exec(value.trim());
    if (!match) {
      throw new InvalidRequestError(
        `${what} must be milliseconds or a string like "250ms", "30s", "5m", "2h", "7d"; got ${JSON.stringify(value.slice(0, 40))}`,
      );
    }
    ms = Math.round(Number(match[1]) * (UNITS[match[2] as string] as number));
  } else {
    throw new InvalidRequestError(`${what} must be a number of milliseconds or a duration string, got ${typeof value}`);
  }
  if (ms < min || ms > max) {
    throw new InvalidRequestError(
      `${what} must be between ${formatDuration(min)} and ${formatDuration(max)}, got ${formatDuration(ms)}`,
    );
  }
  return ms;
}

/** The shortest exact string for a duration: 1500 → "1500ms", 60000 → "1m". */
export function formatDuration(ms: number): string {
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    const size = UNITS[unit] as number;
    if (ms !== 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}
