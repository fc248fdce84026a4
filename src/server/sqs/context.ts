/** What every action is given: who calls, where the queues are, and the shared directory. */
import { LeaseLostError } from '../../core/errors.ts';
import type { DeliveryRef, Ferry } from '../../core/types.ts';
import { checkQueueName } from '../../core/validate.ts';
import { type Grant, queueAllowed, type Scope } from '../tokens.ts';
import { SqsError } from './errors.ts';
import { type Input, requiredString } from './input.ts';
import { ACCOUNT } from './queue-attributes.ts';
import type { QueueDirectory, SqsQueue } from './queues.ts';

export interface ActionContext {
  ferry: Ferry;
  queues: QueueDirectory;
  grant: Grant;
  /** `http://host:port`, as the client reached us: queue URLs are built on it. */
  base: string;
  region: string;
  /** Fires when the client goes away or the server closes: long polls end. */
  readonly signal: AbortSignal;
  /** Whether {@link signal} has fired (or would have, had it been asked for): without making one. */
  readonly gone: boolean;
}

export function queueUrl(context: ActionContext, name: string): string {
  return `${context.base}/${ACCOUNT}/${encodeURIComponent(name)}`;
}

/** Refuses a call outside the caller's token (scope, or queue when one is named). */
export function allow(context: ActionContext, scope: Scope | 'any', queue?: string): void {
  if (scope !== 'any' && !context.grant.scopes.includes(scope)) {
    throw new SqsError('AccessDenied', `Access to the resource is denied: this token lacks the ${scope} scope.`);
  }
  if (queue !== undefined && !queueAllowed(context.grant, queue)) {
    throw new SqsError('AccessDenied', `Access to the resource ${queue} is denied for this token.`);
  }
}

/** QueueUrls already read: a client names the same few on every call. Bounded: cleared when full. */
const names = new Map<string, string>();
const NAMES_KEPT = 1000;

/** The queue name a QueueUrl names: its last path segment, whatever host it was built with. */
export function queueName(url: string): string {
  const known = names.get(url);
  if (known !== undefined) return known;
  const name = readQueueName(url);
  if (names.size >= NAMES_KEPT) names.clear();
  names.set(url, name);
  return name;
}

function readQueueName(url: string): string {
  let path = url;
  const scheme = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(url);
  if (scheme) path = url.slice(scheme[0].length);
  const segments = path.split('/').filter(Boolean);
  let name = '';
  try {
    name = decodeURIComponent(segments.at(-1) ?? '');
  } catch {
    // Falls through to the refusal below.
  }
  try {
    return checkQueueName(name);
  } catch {
    throw new SqsError('InvalidAddress', `The address ${url.slice(0, 200)} is not valid for this endpoint.`);
  }
}

/** The existing queue of an input's QueueUrl, once the caller may use it for `scope`. */
export async function targetQueue(context: ActionContext, input: Input, scope: Scope | 'any'): Promise<SqsQueue> {
  const name = queueName(requiredString(input, 'QueueUrl'));
  allow(context, scope, name);
  return context.queues.require(name);
}

/** A receipt handle carries the message id with Ferry's receipt: both are needed to settle a delivery. */
export function receiptHandle(delivery: DeliveryRef): string {
  return Buffer.from(JSON.stringify([delivery.id, delivery.receipt])).toString('base64url');
}

const HANDLE = /^[A-Za-z0-9_-]+$/;

function invalidHandle(handle: string): SqsError {
  return new SqsError(
    'ReceiptHandleIsInvalid',
    `The input receipt handle "${handle.slice(0, 80)}" is not a valid receipt handle.`,
  );
}

export function parseReceiptHandle(handle: string): DeliveryRef {
  if (handle.length === 0 || handle.length > 1024 || !HANDLE.test(handle)) throw invalidHandle(handle);
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(handle, 'base64url').toString('utf8'));
  } catch {
    throw invalidHandle(handle);
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') {
    throw invalidHandle(handle);
  }
  return { id: parsed[0], receipt: parsed[1] };
}

/**
 * Checks that a receipt handle belongs to `queue`, for tokens limited to some queues (the handle is the
 * client's word; the store knows the message's queue).
 */
export async function checkHandleQueue(context: ActionContext, ref: DeliveryRef, queue: string): Promise<void> {
  if (context.grant.queues === null) return;
  const info = await context.ferry.get(ref.id);
  if (info && info.queue !== queue)
    throw new SqsError('ReceiptHandleIsInvalid', 'The receipt handle belongs to another queue.');
}

export function isLeaseLost(error: unknown): boolean {
  return error instanceof LeaseLostError;
}
