/**
 * SQS queues over Ferry queues. Ferry creates queues on first use and never deletes them; SQS has
 * CreateQueue, DeleteQueue and queue attributes. What SQS keeps beyond Ferry's settings lives in the queue's
 * `metadata` (attributes as `sqs.attr.NAME`, tags as `sqs.tag.KEY`, times, a deleted mark), so every process
 * on the store sees the same queues and nothing is added to the stores.
 *
 * A queue exists for SQS when CreateQueue made it, or when Ferry knows it (a message was sent to it through
 * any face), and DeleteQueue has not hidden it since. Answers are cached for a second: SQS itself says queue
 * changes take up to 60 seconds to be seen everywhere, and the hot path (send, receive, delete) then costs
 * no extra store round trip.
 */
import type { Ferry, QueueSettings } from '../../core/types.ts';
import { invalidValue, noSuchQueue, SqsError } from './errors.ts';

const CREATED = 'sqs.created';
const MODIFIED = 'sqs.modified';
const DELETED = 'sqs.deleted';
const ATTR = 'sqs.attr.';
const TAG = 'sqs.tag.';
const CACHE_MS = 1000;
/** SQS retries a message for ever unless a redrive policy says otherwise; 1000 is the most Ferry allows. */
export const UNLIMITED_RECEIVES = 1000;
export const MAX_TAGS = 50;

/** What CreateQueue accepts (1–80 letters, digits, `-`, `_`; `.fifo` at the end for FIFO queues); Ferry also needs a letter or digit first. */
const SQS_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$/;

export interface SqsQueue {
  name: string;
  fifo: boolean;
  settings: QueueSettings;
  /** The SQS attributes set on the queue (not the computed ones). */
  attributes: Record<string, string>;
  tags: Record<string, string>;
  created: number;
  modified: number;
}

export function isFifoName(name: string): boolean {
  return name.endsWith('.fifo');
}

export function checkNewQueueName(name: string): void {
  const base = isFifoName(name) ? name.slice(0, -5) : name;
  if (!SQS_NAME.test(base) || name.length > 80) {
    throw invalidValue(
      'QueueName',
      name,
      'Can only include alphanumeric characters, hyphens, or underscores, 1 to 80 in length (FIFO queue names end with .fifo); Ferry also needs a letter or digit first.',
    );
  }
}

function fromMetadata(name: string, settings: QueueSettings): SqsQueue {
  const attributes: Record<string, string> = {};
  const tags: Record<string, string> = {};
  for (const [key, value] of Object.entries(settings.metadata)) {
    if (key.startsWith(ATTR)) attributes[key.slice(ATTR.length)] = value;
    else if (key.startsWith(TAG)) tags[key.slice(TAG.length)] = value;
  }
  const created = Number(settings.metadata[CREATED] ?? 0);
  return {
    name,
    fifo: isFifoName(name),
    settings,
    attributes,
    tags,
    created,
    modified: Number(settings.metadata[MODIFIED] ?? created),
  };
}

function toMetadata(
  queue: Pick<SqsQueue, 'attributes' | 'tags' | 'created'>,
  modified: number,
  others: Record<string, string>,
): Record<string, string> {
  const metadata: Record<string, string> = {};
  // Entries of other tools are kept as they are.
  for (const [key, value] of Object.entries(others)) {
    if (!key.startsWith('sqs.')) metadata[key] = value;
  }
  metadata[CREATED] = String(queue.created);
  metadata[MODIFIED] = String(modified);
  for (const [key, value] of Object.entries(queue.attributes)) metadata[ATTR + key] = value;
  for (const [key, value] of Object.entries(queue.tags)) metadata[TAG + key] = value;
  return metadata;
}

export class QueueDirectory {
  readonly #cache = new Map<string, { at: number; queue: SqsQueue | null }>();
  #known: { at: number; names: Promise<Set<string>> } | null = null;

  constructor(
    private readonly ferry: Ferry,
    private readonly now: () => number = Date.now,
  ) {}

  /** The queue, or null when it does not exist for SQS. */
  async find(name: string): Promise<SqsQueue | null> {
    const hit = this.#cache.get(name);
    const now = this.now();
    if (hit && now - hit.at < CACHE_MS) return hit.queue;
    const settings = await this.ferry.configure(name);
    let queue: SqsQueue | null = null;
    if (settings.metadata[DELETED] === undefined) {
      if (settings.metadata[CREATED] !== undefined || (await this.knownNames()).has(name)) {
        queue = fromMetadata(name, settings);
      }
    }
    if (this.#cache.size > 10_000) this.#cache.clear();
    this.#cache.set(name, { at: now, queue });
    return queue;
  }

  async require(name: string): Promise<SqsQueue> {
    const queue = await this.find(name);
    if (!queue) throw noSuchQueue();
    return queue;
  }

  /** Names of every queue Ferry knows, whether or not SQS sees it. */
  async knownNames(): Promise<Set<string>> {
    const now = this.now();
    if (!this.#known || now - this.#known.at >= CACHE_MS) {
      const names = this.ferry.queues().then((all) => new Set(all.map((q) => q.name)));
      this.#known = { at: now, names };
      names.catch(() => {
        if (this.#known?.names === names) this.#known = null;
      });
    }
    return this.#known.names;
  }

  /** Every queue SQS sees, by name. */
  async list(): Promise<SqsQueue[]> {
    const names = [...(await this.knownNames())].sort();
    const queues = await Promise.all(names.map((name) => this.find(name)));
    return queues.filter((q): q is SqsQueue => q !== null);
  }

  /** Writes a queue's SQS state and Ferry settings; `base` is the settings read before. */
  async save(
    queue: Pick<SqsQueue, 'name' | 'attributes' | 'tags' | 'created'>,
    base: QueueSettings,
    settings: { lease?: number; maxAttempts?: number; deadLetter?: string | null } = {},
  ): Promise<SqsQueue> {
    const metadata = toMetadata(queue, this.now(), base.metadata);
    const saved = await this.ferry.configure(queue.name, { ...settings, metadata });
    const result = fromMetadata(queue.name, saved);
    this.#cache.set(queue.name, { at: this.now(), queue: result });
    this.#known = null;
    return result;
  }

  /** Hides the queue from SQS; its messages are the caller's to remove. */
  async hide(name: string, base: QueueSettings): Promise<void> {
    const metadata: Record<string, string> = {};
    for (const [key, value] of Object.entries(base.metadata)) {
      if (!key.startsWith('sqs.')) metadata[key] = value;
    }
    metadata[DELETED] = String(this.now());
    await this.ferry.configure(name, { metadata });
    this.#cache.set(name, { at: this.now(), queue: null });
    this.#known = null;
  }

  /** Reads settings past the cache, for read-modify-write. */
  async fresh(name: string): Promise<QueueSettings> {
    return this.ferry.configure(name);
  }

  forget(name: string): void {
    this.#cache.delete(name);
  }
}

/** Tags as SQS limits them. */
export function checkTags(tags: Record<string, string>): void {
  for (const [key, value] of Object.entries(tags)) {
    if (key.length < 1 || key.length > 128 || !/^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u.test(key)) {
      throw invalidValue('Tags', key, 'Tag keys are 1 to 128 letters, digits, spaces and _ . : / = + - @.');
    }
    if (typeof value !== 'string' || value.length > 256) {
      throw invalidValue('Tags', key, 'Tag values are strings of at most 256 characters.');
    }
  }
  if (Object.keys(tags).length > MAX_TAGS) {
    throw new SqsError('InvalidParameterValue', `A queue may have at most ${MAX_TAGS} tags.`);
  }
}
