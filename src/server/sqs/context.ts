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
  signal: AbortSignal;
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

/** The queue name a QueueUrl names: its last path segment, whatever host it was built with. */
export function queueName(url: string): string {
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

export function parseReceiptHandle(handle: string): DeliveryRef {
  const invalid = () =>
    new SqsError(
      'ReceiptHandleIsInvalid',
      `The input receipt handle "${handle.slice(0, 80)}" is not a valid receipt handle.`,
    );
  if (handle.length === 0 || handle.length > 1024 || !/^[A-Za-z0-9_-]+$/.test(handle)) throw invalid();
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(handle, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 2 || typeof parsed[0] !== 'string' || typeof parsed[1] !== 'string') {
    throw invalid();
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
