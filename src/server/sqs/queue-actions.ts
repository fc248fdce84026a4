/** The queue actions: create, find, list, delete, attributes, purge, dead-letter sources and tags. */
import { queueAllowed } from '../tokens.ts';
import { type ActionContext, allow, queueName, queueUrl, targetQueue } from './context.ts';
import { invalidValue, SqsError } from './errors.ts';
import { type Input, optionalInteger, optionalString, requiredString, stringList, stringMap } from './input.ts';
import {
  answerAttributes,
  checkQueueAttributes,
  type DerivedSettings,
  differ,
  ferrySettings,
} from './queue-attributes.ts';
import { checkNewQueueName, checkTags, type SqsQueue } from './queues.ts';

type Output = Record<string, unknown>;

const exists = (context: ActionContext) => async (name: string) => (await context.queues.find(name)) !== null;

export async function createQueue(context: ActionContext, input: Input): Promise<Output> {
  const name = requiredString(input, 'QueueName');
  checkNewQueueName(name);
  allow(context, 'admin', name);
  const given = stringMap(input, 'Attributes');
  const tags = stringMap(input, 'tags');
  checkTags(tags);
  const attributes = await checkQueueAttributes(name, given, true, exists(context));
  const found = await context.queues.find(name);
  if (found) {
    if (differ(found, attributes)) {
      throw new SqsError(
        'QueueNameExists',
        `A queue already exists with the same name and a different value for attribute(s) ${Object.keys(given).join(', ')}`,
      );
    }
    return { QueueUrl: queueUrl(context, name) };
  }
  const base = await context.queues.fresh(name);
  await context.queues.save({ name, attributes, tags, created: Date.now() }, base, ferrySettings(attributes));
  return { QueueUrl: queueUrl(context, name) };
}

export async function getQueueUrl(context: ActionContext, input: Input): Promise<Output> {
  const name = requiredString(input, 'QueueName');
  const queue = queueName(name);
  allow(context, 'any', queue);
  await context.queues.require(queue);
  return { QueueUrl: queueUrl(context, queue) };
}

/** Pages of queue URLs, as ListQueues and ListDeadLetterSourceQueues answer them. */
function page(context: ActionContext, input: Input, queues: SqsQueue[], key: string): Output {
  const max = optionalInteger(input, 'MaxResults', 1, 1000);
  const token = optionalString(input, 'NextToken');
  let from = 0;
  if (token !== undefined) {
    const after = Buffer.from(token, 'base64url').toString('utf8');
    if (token === '' || !/^[A-Za-z0-9_-]+$/.test(token))
      throw invalidValue('NextToken', token, 'Invalid NextToken value.');
    from = queues.findIndex((q) => q.name > after);
    if (from < 0) from = queues.length;
  }
  const limit = max ?? 1000;
  const chosen = queues.slice(from, from + limit);
  const output: Output = { [key]: chosen.map((q) => queueUrl(context, q.name)) };
  // As SQS: a NextToken only when MaxResults was given and more remain.
  if (max !== undefined && from + limit < queues.length) {
    output.NextToken = Buffer.from((chosen.at(-1) as SqsQueue).name).toString('base64url');
  }
  return output;
}

export async function listQueues(context: ActionContext, input: Input): Promise<Output> {
  const prefix = optionalString(input, 'QueueNamePrefix') ?? '';
  if (prefix.length > 80) throw invalidValue('QueueNamePrefix', prefix, 'at most 80 characters.');
  const queues = (await context.queues.list()).filter(
    (q) => q.name.startsWith(prefix) && queueAllowed(context.grant, q.name),
  );
  return page(context, input, queues, 'QueueUrls');
}

/** The queues whose `deadLetter` is the target: set by a RedrivePolicy, or by Ferry's own `configure`. */
export async function listDeadLetterSourceQueues(context: ActionContext, input: Input): Promise<Output> {
  const target = await targetQueue(context, input, 'any');
  const sources = (await context.queues.list()).filter(
    (q) => q.settings.deadLetter === target.name && queueAllowed(context.grant, q.name),
  );
  return page(context, input, sources, 'queueUrls');
}

/** Removes every message SQS sees (waiting, delayed, in flight); dead and finished ones are Ferry's history. */
async function removeMessages(context: ActionContext, name: string): Promise<void> {
  await context.ferry.purge(name, { state: ['waiting', 'delayed'] });
  let cursor: string | null = null;
  do {
    const listed = await context.ferry.list(name, { state: 'active', limit: 1000, cursor });
    await Promise.all(listed.messages.map((m) => context.ferry.cancel(m.id)));
    cursor = listed.cursor;
  } while (cursor !== null);
}

export async function deleteQueue(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'admin');
  await removeMessages(context, queue.name);
  await context.queues.hide(queue.name, await context.queues.fresh(queue.name));
  return {};
}

export async function purgeQueue(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'admin');
  await removeMessages(context, queue.name);
  return {};
}

export async function getQueueAttributes(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'any');
  const requested = stringList(input, 'AttributeNames');
  const counts = requested.some((n) => n === 'All' || n.startsWith('ApproximateNumberOfMessages'));
  const stats = counts ? await context.ferry.stats(queue.name) : null;
  const attributes = answerAttributes(queue, requested, stats, context.region);
  return Object.keys(attributes).length > 0 ? { Attributes: attributes } : {};
}

export async function setQueueAttributes(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'admin');
  const given = stringMap(input, 'Attributes');
  const checked = await checkQueueAttributes(queue.name, given, false, exists(context));
  const base = await context.queues.fresh(queue.name);
  const attributes = { ...queue.attributes, ...checked };
  for (const [name, value] of Object.entries(checked)) if (value === '') delete attributes[name];
  // Only what was given changes Ferry's settings: a queue made by Ferry keeps its own maxAttempts and lease.
  const derived = ferrySettings(attributes);
  const settings: Partial<DerivedSettings> = {};
  if ('VisibilityTimeout' in checked && derived.lease !== undefined) settings.lease = derived.lease;
  if ('RedrivePolicy' in checked) {
    settings.maxAttempts = derived.maxAttempts;
    settings.deadLetter = derived.deadLetter;
  }
  await context.queues.save({ ...queue, attributes, created: queue.created || Date.now() }, base, settings);
  return {};
}

export async function tagQueue(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'admin');
  const tags = { ...queue.tags, ...stringMap(input, 'Tags') };
  checkTags(tags);
  await context.queues.save(
    { ...queue, tags, created: queue.created || Date.now() },
    await context.queues.fresh(queue.name),
  );
  return {};
}

export async function untagQueue(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'admin');
  const tags = { ...queue.tags };
  for (const key of stringList(input, 'TagKeys')) delete tags[key];
  await context.queues.save(
    { ...queue, tags, created: queue.created || Date.now() },
    await context.queues.fresh(queue.name),
  );
  return {};
}

export async function listQueueTags(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'any');
  return Object.keys(queue.tags).length > 0 ? { Tags: queue.tags } : {};
}
