/**
 * Input checks shared by the engine and the HTTP layer. Each throws {@link InvalidRequestError} or
 * {@link PayloadTooLargeError} with a message that names the argument and says what was wrong.
 */
import { formatDuration, parseDuration } from './duration.ts';
import { InvalidRequestError, PayloadTooLargeError } from './errors.ts';
import type { Backoff, Duration, EventType, MessageState, QueueConfig, QueueSettings, SendOptions } from './types.ts';
import { EVENT_TYPES, MESSAGE_STATES } from './types.ts';

export const QUEUE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$/;
export const LEASE_MIN = 100;
export const LEASE_MAX = 12 * 3_600_000;
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
/** The longest receipt accepted; a store's receipts are far shorter, so this only bounds what a caller sends. */
export const MAX_RECEIPT = 256;
/** The most messages one receive may ask for. */
export const MAX_RECEIVE = 1000;
/**
 * The deepest nesting of a payload, result or error. The HTTP server refuses bodies nested deeper than its
 * limit before parsing them, and its default leaves room for this depth wherever a body puts a value
 * (server/json-body.ts), so a value is refused alike by every store and over HTTP.
 */
export const MAX_JSON_DEPTH = 1000;
const MAX_DELAY = 366 * 86_400_000;
const MAX_TEXT = 512;
const MAX_HEADERS_BYTES = 16 * 1024;
const MAX_METADATA_BYTES = 64 * 1024;
const PRIORITY_LIMIT = 2 ** 31 - 1;

/** A queue's settings until configured. Frozen through and through: stores hand it out and merge it. */
export const DEFAULT_SETTINGS: Readonly<QueueSettings> = Object.freeze({
  maxAttempts: 3,
  backoff: Object.freeze({ type: 'exponential', delay: 1000, max: 3_600_000, jitter: true } as const),
  lease: 30_000,
  retention: 7 * 86_400_000,
  concurrency: null,
  rateLimit: null,
  timeout: null,
  deadLetter: null,
  keyConcurrency: 1,
  keyRateLimit: null,
  metadata: {},
  paused: false,
});

/** A copy of `settings` that shares no object with it. */
export function copySettings(settings: QueueSettings): QueueSettings {
  return {
    ...settings,
    backoff: { ...settings.backoff },
    rateLimit: settings.rateLimit === null ? null : { ...settings.rateLimit },
    keyRateLimit: settings.keyRateLimit === null ? null : { ...settings.keyRateLimit },
    metadata: { ...settings.metadata },
  };
}

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}…` : value);
  if (value === undefined) return 'undefined';
  try {
    const text = JSON.stringify(value);
    return text && text.length > 60 ? `${text.slice(0, 60)}…` : String(text);
  } catch {
    return typeof value;
  }
}

export function checkQueueName(name: unknown, what = 'queue name'): string {
  if (typeof name !== 'string' || !QUEUE_NAME.test(name)) {
    throw new InvalidRequestError(
      `${what} must match ${QUEUE_NAME.source} (1–128 characters: letters, digits, '.', '_', ':', '-', not starting with a symbol); got ${show(name)}`,
    );
  }
  return name;
}

export function checkInteger(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidRequestError(`${what} must be an integer from ${min} to ${max}; got ${show(value)}`);
  }
  return value;
}

function checkText(value: unknown, what: string): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > MAX_TEXT) {
    throw new InvalidRequestError(
      `${what} must be a non-empty string of at most ${MAX_TEXT} characters; got ${show(value)}`,
    );
  }
  return value;
}

export function checkObject(value: unknown, what: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new InvalidRequestError(`${what} must be an object; got ${show(value)}`);
  }
  return value as Record<string, unknown>;
}

export function checkKeys(value: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key) && value[key] !== undefined) {
      throw new InvalidRequestError(`${what} has an unknown field ${show(key)}; allowed: ${allowed.join(', ')}`);
    }
  }
}

/** Checks an options argument: absent, or an object with only the `allowed` fields. */
export function checkOptions<T>(value: T | undefined, allowed: readonly string[], what = 'options'): T {
  if (value === undefined || value === null) return {} as T;
  checkKeys(checkObject(value, what), allowed, what);
  return value;
}

export function checkLease(value: Duration, what = 'lease'): number {
  return parseDuration(value, what, LEASE_MIN, LEASE_MAX);
}

/** An attempt's timeout: from 100 ms to 7 days. */
export const TIMEOUT_MIN = 100;
export const TIMEOUT_MAX = 7 * 86_400_000;

export function checkTimeout(value: Duration, what = 'timeout'): number {
  return parseDuration(value, what, TIMEOUT_MIN, TIMEOUT_MAX);
}

/** Serializes a JSON value and checks its size and nesting. `undefined` is stored as null. */
export function serialize(value: unknown, what: string, maxBytes: number): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value === undefined ? null : value);
  } catch (error) {
    throw new InvalidRequestError(`${what} must be JSON-serializable: ${(error as Error).message}`);
  }
  if (text === undefined) throw new InvalidRequestError(`${what} must be a JSON value; got ${typeof value}`);
  // UTF-8 is at most 3 bytes per UTF-16 unit, so short strings skip the exact count.
  if (text.length * 3 > maxBytes) {
    const bytes = utf8Length(text);
    if (bytes > maxBytes) {
      throw new PayloadTooLargeError(`${what} is ${bytes} bytes as JSON; the limit is ${maxBytes} bytes`);
    }
  }
  // Nesting deeper than the limit takes two characters a level, so short texts skip the scan.
  if (text.length > 2 * MAX_JSON_DEPTH && jsonDepth(text, MAX_JSON_DEPTH) > MAX_JSON_DEPTH) {
    throw new InvalidRequestError(`${what} is nested deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return text;
}

/** The deepest `[`/`{` nesting in a JSON text, outside strings; stops counting past `limit`. */
export function jsonDepth(text: string, limit: number): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 92 /* \ */) i++;
      else if (c === 34 /* " */) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 123 /* { */ || c === 91 /* [ */) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        if (deepest > limit) return deepest;
      }
    } else if (c === 125 /* } */ || c === 93 /* ] */) depth--;
  }
  return deepest;
}

const encoder = new TextEncoder();
function utf8Length(text: string): number {
  return encoder.encode(text).length;
}

export function checkBackoff(value: unknown, what = 'backoff'): QueueSettings['backoff'] {
  const b = checkObject(value, what) as Partial<Backoff>;
  checkKeys(b, ['type', 'delay', 'max', 'jitter'], what);
  if (b.type !== 'exponential' && b.type !== 'fixed') {
    throw new InvalidRequestError(`${what}.type must be "exponential" or "fixed"; got ${show(b.type)}`);
  }
  const delay = b.delay === undefined ? 1000 : parseDuration(b.delay, `${what}.delay`, 0, MAX_DELAY);
  const max = b.max === undefined ? Math.max(3_600_000, delay) : parseDuration(b.max, `${what}.max`, 0, MAX_DELAY);
  if (max < delay)
    throw new InvalidRequestError(
      `${what}.max (${formatDuration(max)}) is below ${what}.delay (${formatDuration(delay)})`,
    );
  if (b.jitter !== undefined && typeof b.jitter !== 'boolean') {
    throw new InvalidRequestError(`${what}.jitter must be a boolean; got ${show(b.jitter)}`);
  }
  return { type: b.type, delay, max, jitter: b.type === 'exponential' && b.jitter !== false };
}

function checkHeaders(value: unknown): string {
  const headers = checkObject(value, 'headers');
  let bytes = 0;
  for (const [name, v] of Object.entries(headers)) {
    if (typeof v !== 'string') throw new InvalidRequestError(`headers.${name} must be a string; got ${show(v)}`);
    bytes += name.length + v.length;
  }
  if (bytes > MAX_HEADERS_BYTES)
    throw new InvalidRequestError(`headers must total at most ${MAX_HEADERS_BYTES} characters`);
  return JSON.stringify(headers);
}

export interface CheckedSend {
  priority: number;
  key: string | null;
  dedupeId: string | null;
  maxAttempts: number | null;
  backoff: QueueSettings['backoff'] | null;
  lease: number | null;
  timeout: number | null;
  headers: string | null;
  runAt: number;
}

const SEND_FIELDS = [
  'delay',
  'runAt',
  'priority',
  'key',
  'dedupeId',
  'maxAttempts',
  'backoff',
  'lease',
  'timeout',
  'headers',
  'transaction',
];

/** Checks send options; `extra` names fields the caller has already taken out (e.g. `payload`). */
export function checkSendOptions(
  options: SendOptions | undefined,
  now: number,
  extra: readonly string[] = [],
): CheckedSend {
  if (options === undefined || options === null) {
    return {
      priority: 0,
      key: null,
      dedupeId: null,
      maxAttempts: null,
      backoff: null,
      lease: null,
      timeout: null,
      headers: null,
      runAt: now,
    };
  }
  const o = checkObject(options, 'options') as SendOptions;
  checkKeys(o as Record<string, unknown>, extra.length ? [...SEND_FIELDS, ...extra] : SEND_FIELDS, 'options');
  let runAt = now;
  if (o.delay !== undefined && o.runAt !== undefined)
    throw new InvalidRequestError('give either delay or runAt, not both');
  if (o.delay !== undefined) runAt = now + parseDuration(o.delay, 'delay', 0, MAX_DELAY);
  if (o.runAt !== undefined) runAt = checkTime(o.runAt, 'runAt');
  return {
    priority: o.priority === undefined ? 0 : checkInteger(o.priority, 'priority', -PRIORITY_LIMIT, PRIORITY_LIMIT),
    key: o.key === undefined || o.key === null ? null : checkText(o.key, 'key'),
    dedupeId: o.dedupeId === undefined || o.dedupeId === null ? null : checkText(o.dedupeId, 'dedupeId'),
    maxAttempts: o.maxAttempts === undefined ? null : checkInteger(o.maxAttempts, 'maxAttempts', 1, 1000),
    backoff: o.backoff === undefined ? null : checkBackoff(o.backoff),
    lease: o.lease === undefined ? null : checkLease(o.lease),
    timeout: o.timeout === undefined ? null : checkTimeout(o.timeout),
    headers: o.headers === undefined ? null : checkHeaders(o.headers),
    runAt,
  };
}

export function checkTime(value: unknown, what: string): number {
  let ms: number;
  if (value instanceof Date) ms = value.getTime();
  else if (typeof value === 'number') ms = value;
  else if (typeof value === 'string') ms = Date.parse(value);
  else
    throw new InvalidRequestError(
      `${what} must be a Date, an ISO 8601 string or epoch milliseconds; got ${show(value)}`,
    );
  if (!Number.isFinite(ms) || !Number.isInteger(ms) || ms < 0 || ms > 253402300799999) {
    throw new InvalidRequestError(`${what} is not a valid time: ${show(value)}`);
  }
  return ms;
}

export function checkState(value: unknown, what = 'state'): MessageState {
  if (!MESSAGE_STATES.includes(value as MessageState)) {
    throw new InvalidRequestError(`${what} must be one of ${MESSAGE_STATES.join(', ')}; got ${show(value)}`);
  }
  return value as MessageState;
}

export function checkEventTypes(value: unknown): EventType[] {
  if (!Array.isArray(value)) throw new InvalidRequestError(`types must be an array of event types; got ${show(value)}`);
  for (const t of value) {
    if (!EVENT_TYPES.includes(t as EventType)) {
      throw new InvalidRequestError(`types must contain only ${EVENT_TYPES.join(', ')}; got ${show(t)}`);
    }
  }
  return value as EventType[];
}

export function checkId(value: unknown, what = 'id'): string {
  if (typeof value !== 'string' || value.length === 0 || value.length > 64) {
    throw new InvalidRequestError(`${what} must be a message id string; got ${show(value)}`);
  }
  return value;
}

/** Checks a configure() patch of `queue` and turns it into stored settings. */
export function checkQueueConfig(config: QueueConfig, queue?: string): Partial<QueueSettings> {
  const c = checkObject(config, 'config') as QueueConfig;
  checkKeys(
    c as Record<string, unknown>,
    [
      'maxAttempts',
      'backoff',
      'lease',
      'retention',
      'concurrency',
      'rateLimit',
      'timeout',
      'deadLetter',
      'keyConcurrency',
      'keyRateLimit',
      'metadata',
    ],
    'config',
  );
  const patch: Partial<QueueSettings> = {};
  if (c.maxAttempts !== undefined) patch.maxAttempts = checkInteger(c.maxAttempts, 'maxAttempts', 1, 1000);
  if (c.backoff !== undefined) patch.backoff = checkBackoff(c.backoff);
  if (c.lease !== undefined) patch.lease = checkLease(c.lease);
  if (c.retention !== undefined) patch.retention = parseDuration(c.retention, 'retention', 0, 3650 * 86_400_000);
  if (c.concurrency !== undefined) {
    patch.concurrency = c.concurrency === null ? null : checkInteger(c.concurrency, 'concurrency', 1, 100_000);
  }
  if (c.rateLimit !== undefined) patch.rateLimit = checkRateLimit(c.rateLimit, 'rateLimit');
  if (c.keyConcurrency !== undefined) {
    patch.keyConcurrency = checkInteger(c.keyConcurrency, 'keyConcurrency', 1, 100_000);
  }
  if (c.timeout !== undefined) patch.timeout = c.timeout === null ? null : checkTimeout(c.timeout);
  if (c.deadLetter !== undefined) {
    patch.deadLetter = c.deadLetter === null ? null : checkQueueName(c.deadLetter, 'deadLetter');
    if (patch.deadLetter !== null && patch.deadLetter === queue) {
      throw new InvalidRequestError(`deadLetter must name another queue than ${show(queue)} itself`);
    }
  }
  if (c.keyRateLimit !== undefined) patch.keyRateLimit = checkRateLimit(c.keyRateLimit, 'keyRateLimit');
  if (c.metadata !== undefined) patch.metadata = checkMetadata(c.metadata);
  return patch;
}

/** A `{ max, per }` window limit, or null for none. */
function checkRateLimit(value: unknown, what: string): { max: number; per: number } | null {
  if (value === null) return null;
  const r = checkObject(value, what);
  checkKeys(r, ['max', 'per'], what);
  return {
    max: checkInteger(r.max, `${what}.max`, 1, 1_000_000),
    per: parseDuration(r.per as Duration, `${what}.per`, 1, 86_400_000),
  };
}

function checkMetadata(value: unknown): Record<string, string> {
  const metadata = checkObject(value, 'metadata');
  let bytes = 0;
  for (const [name, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new InvalidRequestError(`metadata.${name} must be a string; got ${show(v)}`);
    bytes += name.length + v.length;
  }
  if (bytes > MAX_METADATA_BYTES) {
    throw new InvalidRequestError(`metadata must total at most ${MAX_METADATA_BYTES} characters`);
  }
  return { ...metadata } as Record<string, string>;
}
