/**
 * Queue attributes: which SQS accepts, their limits, what they become in Ferry, and what GetQueueAttributes
 * answers. `VisibilityTimeout` is the queue's lease and `RedrivePolicy.maxReceiveCount` its `maxAttempts`;
 * `DelaySeconds`, `MaximumMessageSize` and `ReceiveMessageWaitTimeSeconds` are applied by this endpoint; the
 * others are kept and answered back (see the README for what is not enforced, and why).
 */

import type { QueueStats } from '../../core/types.ts';
import { LEASE_MIN } from '../../core/validate.ts';
import { invalidValue, SqsError } from './errors.ts';
import { isFifoName, type SqsQueue, UNLIMITED_RECEIVES } from './queues.ts';

export const ACCOUNT = '000000000000';
export const DEFAULT_MAX_MESSAGE_SIZE = 262_144;
export const MAX_MESSAGE_SIZE = 1_048_576;

const integer = (min: number, max: number) => (value: string, name: string) => {
  if (!/^\d{1,10}$/.test(value) || Number(value) < min || Number(value) > max) {
    throw new SqsError(
      'InvalidAttributeValue',
      `Invalid value for the parameter ${name}: an integer from ${min} to ${max}.`,
    );
  }
};
const oneOf =
  (...choices: string[]) =>
  (value: string, name: string) => {
    if (!choices.includes(value)) {
      throw new SqsError(
        'InvalidAttributeValue',
        `Invalid value for the parameter ${name}: one of ${choices.join(', ')}.`,
      );
    }
  };
const json = (value: string, name: string) => {
  try {
    const parsed = JSON.parse(value) as unknown;
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('not an object');
  } catch {
    throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}: a JSON object.`);
  }
};
const text = (value: string, name: string) => {
  if (value.length > 20_000)
    throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${name}: too long.`);
};

interface Rule {
  check: (value: string, name: string) => void;
  /** Only FIFO queues take it. */
  fifo?: boolean;
  /** Only CreateQueue takes it. */
  createOnly?: boolean;
  /** Answered when unset. */
  default?: (queue: SqsQueue) => string | undefined;
}

const RULES: Record<string, Rule> = {
  DelaySeconds: { check: integer(0, 900), default: () => '0' },
  MaximumMessageSize: { check: integer(1024, MAX_MESSAGE_SIZE), default: () => String(DEFAULT_MAX_MESSAGE_SIZE) },
  MessageRetentionPeriod: { check: integer(60, 1_209_600), default: () => '345600' },
  ReceiveMessageWaitTimeSeconds: { check: integer(0, 20), default: () => '0' },
  VisibilityTimeout: { check: integer(0, 43_200) },
  RedrivePolicy: { check: (v, n) => (v === '' ? undefined : json(v, n)) },
  RedriveAllowPolicy: { check: (v, n) => (v === '' ? undefined : json(v, n)) },
  Policy: { check: (v, n) => (v === '' ? undefined : json(v, n)) },
  KmsMasterKeyId: { check: text },
  KmsDataKeyReusePeriodSeconds: { check: integer(60, 86_400), default: () => '300' },
  SqsManagedSseEnabled: { check: oneOf('true', 'false'), default: () => 'false' },
  FifoQueue: { check: oneOf('true', 'false'), createOnly: true, default: (q) => (q.fifo ? 'true' : undefined) },
  ContentBasedDeduplication: {
    check: oneOf('true', 'false'),
    fifo: true,
    default: (q) => (q.fifo ? 'false' : undefined),
  },
  DeduplicationScope: {
    check: oneOf('messageGroup', 'queue'),
    fifo: true,
    default: (q) => (q.fifo ? 'queue' : undefined),
  },
  FifoThroughputLimit: {
    check: oneOf('perQueue', 'perMessageGroupId'),
    fifo: true,
    default: (q) => (q.fifo ? 'perQueue' : undefined),
  },
};

const COMPUTED = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
  'CreatedTimestamp',
  'LastModifiedTimestamp',
  'QueueArn',
];

export function queueArn(region: string, name: string): string {
  return `arn:aws:sqs:${region}:${ACCOUNT}:${name}`;
}

/** The queue name of an SQS queue ARN, or null. */
function arnQueue(arn: string): string | null {
  const m = /^arn:aws:sqs:[a-z0-9-]*:\d{12}:([^:]+)$/.exec(arn);
  return m ? (m[1] as string) : null;
}

export interface RedrivePolicy {
  deadLetterTargetArn: string;
  maxReceiveCount: number;
}

/**
 * Checks attributes to set, for a queue named `name` (FIFO or not). `exists` tells whether a dead-letter
 * target names a queue SQS sees. Answers them normalized (RedrivePolicy with a numeric count).
 */
export async function checkQueueAttributes(
  name: string,
  given: Record<string, string>,
  creating: boolean,
  exists: (queue: string) => Promise<boolean>,
): Promise<Record<string, string>> {
  const fifo = isFifoName(name);
  const checked: Record<string, string> = {};
  for (const [key, value] of Object.entries(given)) {
    const rule = RULES[key];
    if (!rule || (rule.createOnly && !creating)) {
      throw new SqsError('InvalidAttributeName', `Unknown Attribute ${key}.`);
    }
    if (typeof value !== 'string')
      throw new SqsError('InvalidAttributeValue', `Invalid value for the parameter ${key}.`);
    if (rule.fifo && !fifo)
      throw new SqsError('InvalidAttributeName', `Unknown Attribute ${key}: it applies to FIFO queues only.`);
    rule.check(value, key);
    checked[key] = value;
  }
  if (creating && (checked.FifoQueue === 'true') !== fifo) {
    throw invalidValue(
      'QueueName',
      name,
      fifo
        ? 'A queue whose name ends with .fifo must be created with the attribute FifoQueue=true.'
        : 'The name of a FIFO queue must end with the .fifo suffix.',
    );
  }
  if (checked.FifoQueue === 'false') delete checked.FifoQueue;
  if (checked.RedrivePolicy) {
    const policy = JSON.parse(checked.RedrivePolicy) as Record<string, unknown>;
    const count = Number(policy.maxReceiveCount);
    const target = typeof policy.deadLetterTargetArn === 'string' ? arnQueue(policy.deadLetterTargetArn) : null;
    if (!Number.isInteger(count) || count < 1 || count > 1000 || target === null) {
      throw new SqsError(
        'InvalidParameterValue',
        'Value for parameter RedrivePolicy is invalid. Reason: Redrive policy needs deadLetterTargetArn (a queue ARN) and maxReceiveCount from 1 to 1000.',
      );
    }
    if (isFifoName(target) !== fifo) {
      throw new SqsError(
        'InvalidParameterValue',
        'Value for parameter RedrivePolicy is invalid. Reason: the dead-letter queue of a FIFO queue must be a FIFO queue, and of a standard queue a standard queue.',
      );
    }
    if (!(await exists(target))) {
      throw new SqsError(
        'InvalidParameterValue',
        'Value for parameter RedrivePolicy is invalid. Reason: Dead letter target does not exist.',
      );
    }
    checked.RedrivePolicy = JSON.stringify({ deadLetterTargetArn: policy.deadLetterTargetArn, maxReceiveCount: count });
  }
  return checked;
}

/** The Ferry settings the SQS attributes of a queue make. */
export interface DerivedSettings {
  lease?: number;
  maxAttempts: number;
  /** RedrivePolicy's target: the queue's `deadLetter`, so the store copies dead messages in their transaction. */
  deadLetter: string | null;
}

export function ferrySettings(attributes: Record<string, string>): DerivedSettings {
  const settings: DerivedSettings = { maxAttempts: UNLIMITED_RECEIVES, deadLetter: null };
  if (attributes.VisibilityTimeout !== undefined) {
    settings.lease = Math.max(LEASE_MIN, Number(attributes.VisibilityTimeout) * 1000);
  }
  if (attributes.RedrivePolicy) {
    const policy = JSON.parse(attributes.RedrivePolicy) as RedrivePolicy;
    settings.maxAttempts = policy.maxReceiveCount;
    settings.deadLetter = arnQueue(policy.deadLetterTargetArn);
  }
  return settings;
}

/** The visibility timeout of a queue in seconds: as set through SQS, else its Ferry lease. */
export function visibilitySeconds(queue: SqsQueue): number {
  const set = queue.attributes.VisibilityTimeout;
  if (set !== undefined && Math.max(LEASE_MIN, Number(set) * 1000) === queue.settings.lease) return Number(set);
  return Math.round(queue.settings.lease / 1000);
}

/** A numeric attribute as set, else its default. */
export function numberAttribute(queue: SqsQueue, name: string): number {
  return Number(queue.attributes[name] ?? RULES[name]?.default?.(queue) ?? 0);
}

/** What GetQueueAttributes answers for `requested` (names, or `All`). */
export function answerAttributes(
  queue: SqsQueue,
  requested: readonly string[],
  stats: QueueStats | null,
  region: string,
): Record<string, string> {
  for (const name of requested) {
    if (name !== 'All' && !RULES[name] && !COMPUTED.includes(name)) {
      throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
    }
  }
  const all = requested.includes('All');
  const wanted = (name: string) => all || requested.includes(name);
  const answer: Record<string, string> = {};
  if (stats) {
    if (wanted('ApproximateNumberOfMessages')) answer.ApproximateNumberOfMessages = String(stats.waiting);
    if (wanted('ApproximateNumberOfMessagesNotVisible'))
      answer.ApproximateNumberOfMessagesNotVisible = String(stats.active);
    if (wanted('ApproximateNumberOfMessagesDelayed')) answer.ApproximateNumberOfMessagesDelayed = String(stats.delayed);
  }
  if (wanted('CreatedTimestamp')) answer.CreatedTimestamp = String(Math.floor(queue.created / 1000));
  if (wanted('LastModifiedTimestamp')) answer.LastModifiedTimestamp = String(Math.floor(queue.modified / 1000));
  if (wanted('QueueArn')) answer.QueueArn = queueArn(region, queue.name);
  if (wanted('VisibilityTimeout')) answer.VisibilityTimeout = String(visibilitySeconds(queue));
  for (const [name, rule] of Object.entries(RULES)) {
    if (name === 'VisibilityTimeout' || !wanted(name)) continue;
    const value = queue.attributes[name] ?? rule.default?.(queue);
    if (value !== undefined && value !== '') answer[name] = value;
  }
  return answer;
}

/** Whether the attributes given to CreateQueue differ from those of the queue that exists. */
export function differ(queue: SqsQueue, given: Record<string, string>): boolean {
  return Object.entries(given).some(([name, value]) => {
    if (name === 'VisibilityTimeout') return Number(value) !== visibilitySeconds(queue);
    const current = queue.attributes[name] ?? RULES[name]?.default?.(queue);
    return current !== value;
  });
}
