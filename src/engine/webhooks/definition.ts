/** Webhook definitions: validation of what users give, and the shapes they get back (never the secret). */
import { InvalidRequestError } from '../../core/errors.ts';
import type { EventType, WebhookDefinition, WebhookDelivery, WebhookInfo } from '../../core/types.ts';
import { checkEventTypes, checkObject, checkOptions, checkQueueName } from '../../core/validate.ts';
import type { WebhookAttemptRecord, WebhookRecord } from '../../store/store.ts';
import { secretKey } from './signature.ts';

export const DEFAULT_WEBHOOK_TYPES: readonly EventType[] = Object.freeze(['completed', 'dead']);
const MAX_URL = 2048;
const MAX_QUEUES = 100;

/** Validates a definition; answers the record to store and the parsed URL (for the SSRF check). */
export function checkWebhook(
  name: unknown,
  definition: WebhookDefinition,
  now: number,
): { record: WebhookRecord; url: URL } {
  checkQueueName(name, 'webhook name');
  const d = checkObject(definition, 'webhook');
  checkOptions(d, ['url', 'queues', 'types', 'secret'], 'webhook');
  if (typeof d.url !== 'string' || d.url.length === 0 || d.url.length > MAX_URL) {
    throw new InvalidRequestError(`url must be an http:// or https:// URL of at most ${MAX_URL} characters`);
  }
  let url: URL;
  try {
    url = new URL(d.url);
  } catch {
    throw new InvalidRequestError(`url must be an absolute http:// or https:// URL; got ${JSON.stringify(d.url)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new InvalidRequestError(`url must use http or https; got ${url.protocol.replace(/:$/, '')}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new InvalidRequestError('url must not carry a user or password: receivers check the signature instead');
  }
  let queues: string[] | null = null;
  if (d.queues !== undefined && d.queues !== null) {
    if (!Array.isArray(d.queues) || d.queues.length === 0 || d.queues.length > MAX_QUEUES) {
      throw new InvalidRequestError(
        `queues must be an array of 1 to ${MAX_QUEUES} queue names (omit it for every queue)`,
      );
    }
    queues = [...new Set(d.queues.map((q) => checkQueueName(q)))].sort();
  }
  let types = [...DEFAULT_WEBHOOK_TYPES];
  if (d.types !== undefined && d.types !== null) {
    const given = checkEventTypes(d.types);
    if (given.length === 0)
      throw new InvalidRequestError('types must name at least one event type (omit it for completed and dead)');
    types = [...new Set(given)];
  }
  secretKey(d.secret);
  const record: WebhookRecord = {
    name: name as string,
    url: url.toString(),
    queues,
    types,
    secret: d.secret as string,
    createdAt: now,
    updatedAt: now,
  };
  return { record, url };
}

export function checkWebhookName(name: unknown): string {
  return checkQueueName(name, 'webhook name');
}

export function toWebhookInfo(r: WebhookRecord): WebhookInfo {
  return {
    name: r.name,
    url: r.url,
    queues: r.queues,
    types: r.types,
    createdAt: new Date(r.createdAt).toISOString(),
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}

export function toWebhookDelivery(a: WebhookAttemptRecord): WebhookDelivery {
  return {
    id: a.deliveryId,
    event: { seq: a.seq, type: a.type, queue: a.queue, id: a.messageId },
    attempt: a.attempt,
    status: a.status,
    error: a.error,
    outcome: a.outcome,
    at: new Date(a.at).toISOString(),
    durationMs: a.durationMs,
  };
}
