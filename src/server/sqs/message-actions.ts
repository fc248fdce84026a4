/**
 * The message actions: SendMessage(Batch), ReceiveMessage, DeleteMessage(Batch),
 * ChangeMessageVisibility(Batch). SQS's body is the payload, a JSON string, as sent; a payload sent through
 * Ferry that is not a string reads as its JSON text. ReceiptHandle is Ferry's receipt (with the id),
 * DeleteMessage is ack, ChangeMessageVisibility is extend, or (0) a nack due again at once, counted as SQS
 * counts every receive toward maxReceiveCount.
 */
import { createHash } from 'node:crypto';
import type { BatchMessage, Delivery, SendOptions } from '../../core/types.ts';
import {
  type ActionContext,
  checkHandleQueue,
  isLeaseLost,
  parseReceiptHandle,
  receiptHandle,
  targetQueue,
} from './context.ts';
import { type AttributeValue, md5Hex, md5OfAttributes } from './digest.ts';
import { invalidValue, missing, SqsError, toSqsError } from './errors.ts';
import {
  attributeMap,
  attributeOutput,
  batchEntries,
  type Input,
  leaseOf,
  optionalInteger,
  optionalString,
  requiredString,
  stringList,
} from './input.ts';
import {
  checkAttributes,
  DEAD_LETTER_HEADER,
  DEDUPE_HEADER,
  fromHeaders,
  GROUP_HEADER,
  selectAttributes,
  TRACE_HEADER,
  toHeaders,
  validText,
} from './message-attributes.ts';
import { numberAttribute, queueArn } from './queue-attributes.ts';
import type { SqsQueue } from './queues.ts';

type Output = Record<string, unknown>;

/** SQS's id rule for deduplication and group ids. */
const TAG_ID = /^[\x21-\x7e]{1,128}$/;

interface Prepared {
  body: string;
  options: SendOptions;
  size: number;
  answer: Output;
}

/** Checks one message to send and builds its Ferry options and the digests SendMessage answers. */
function prepare(queue: SqsQueue, input: Input): Prepared {
  const body = optionalString(input, 'MessageBody');
  if (body === undefined) throw missing('MessageBody');
  if (body.length === 0) throw invalidValue('MessageBody', body, 'The message body must be at least one character.');
  if (!validText(body)) {
    throw new SqsError(
      'InvalidMessageContents',
      'Invalid binary character in the message body: SQS allows #x9 | #xA | #xD | #x20 to #xD7FF | #xE000 to #xFFFD | #x10000 to #x10FFFF.',
    );
  }
  const attributes = attributeMap(input, 'MessageAttributes');
  const system = attributeMap(input, 'MessageSystemAttributes');
  let size = Buffer.byteLength(body, 'utf8') + checkAttributes(attributes);
  const extra: Record<string, string> = {};
  for (const [name, value] of Object.entries(system)) {
    if (name !== 'AWSTraceHeader' || value.DataType !== 'String' || !value.StringValue) {
      throw new SqsError(
        'InvalidParameterValue',
        `Message system attribute ${name} is not supported: only AWSTraceHeader, of type String.`,
      );
    }
    extra[TRACE_HEADER] = value.StringValue;
    size += value.StringValue.length;
  }
  const limit = numberAttribute(queue, 'MaximumMessageSize');
  if (size > limit) {
    throw new SqsError(
      'InvalidParameterValue',
      `One or more parameters are invalid. Reason: Message must be shorter than ${limit} bytes.`,
    );
  }

  const options: SendOptions = {};
  const delay = optionalInteger(input, 'DelaySeconds', 0, 900);
  const group = optionalString(input, 'MessageGroupId');
  const dedupe = optionalString(input, 'MessageDeduplicationId');
  if (group !== undefined && !TAG_ID.test(group))
    throw invalidValue('MessageGroupId', group, 'must be 1 to 128 printable ASCII characters.');
  if (dedupe !== undefined && !TAG_ID.test(dedupe)) {
    throw invalidValue('MessageDeduplicationId', dedupe, 'must be 1 to 128 printable ASCII characters.');
  }
  const answer: Output = { MD5OfMessageBody: md5Hex(body) };
  if (queue.fifo) {
    if (delay !== undefined) {
      throw invalidValue('DelaySeconds', delay, 'The request include parameter that is not valid for this queue type.');
    }
    if (group === undefined) throw missing('MessageGroupId');
    const id =
      dedupe ??
      (queue.attributes.ContentBasedDeduplication === 'true'
        ? createHash('sha256').update(body).digest('hex')
        : undefined);
    if (id === undefined) {
      throw new SqsError(
        'InvalidParameterValue',
        'The queue should either have ContentBasedDeduplication enabled or MessageDeduplicationId provided explicitly',
      );
    }
    options.key = group;
    options.dedupeId = queue.attributes.DeduplicationScope === 'messageGroup' ? `${group}/${id}` : id;
    extra[DEDUPE_HEADER] = id;
  } else {
    if (dedupe !== undefined) {
      throw invalidValue(
        'MessageDeduplicationId',
        dedupe,
        'The request include parameter that is not valid for this queue type.',
      );
    }
    if (group !== undefined) extra[GROUP_HEADER] = group;
    const seconds = delay ?? numberAttribute(queue, 'DelaySeconds');
    if (seconds > 0) options.delay = seconds * 1000;
  }
  const headers = toHeaders(attributes, extra);
  if (Object.keys(headers).length > 0) options.headers = headers;
  const md5Attributes = md5OfAttributes(attributes);
  if (md5Attributes) answer.MD5OfMessageAttributes = md5Attributes;
  const md5System = md5OfAttributes(system);
  if (md5System) answer.MD5OfMessageSystemAttributes = md5System;
  return { body, options, size, answer };
}

/** FIFO sequence numbers: Ferry's ids are UUIDv7, ordered by time, so their number is too. */
function sequenceNumber(id: string): string {
  return BigInt(`0x${id.replace(/-/g, '')}`).toString();
}

export async function sendMessage(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'send');
  const prepared = prepare(queue, input);
  const sent = await context.ferry.send(queue.name, prepared.body, prepared.options);
  return {
    ...prepared.answer,
    MessageId: sent.id,
    ...(queue.fifo ? { SequenceNumber: sequenceNumber(sent.id) } : {}),
  };
}

interface Failed {
  Id: string;
  Code: string;
  Message: string;
  SenderFault: boolean;
}

function failure(id: string, error: unknown): Failed {
  const e = toSqsError(error);
  return { Id: id, Code: e.kind.query, Message: e.message, SenderFault: e.kind.fault === 'Sender' };
}

export async function sendMessageBatch(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'send');
  const entries = batchEntries(input);
  const failed: Failed[] = [];
  const ready: { id: string; prepared: Prepared }[] = [];
  for (const entry of entries) {
    try {
      ready.push({ id: entry.Id as string, prepared: prepare(queue, entry) });
    } catch (error) {
      failed.push(failure(entry.Id as string, error));
    }
  }
  const total = ready.reduce((sum, r) => sum + r.prepared.size, 0);
  const limit = numberAttribute(queue, 'MaximumMessageSize');
  if (total > limit) {
    throw new SqsError(
      'BatchRequestTooLong',
      `Batch requests cannot be longer than ${limit} bytes. You have sent ${total} bytes.`,
    );
  }
  const successful: Output[] = [];
  if (ready.length > 0) {
    const messages: BatchMessage[] = ready.map((r) => ({ payload: r.prepared.body, ...r.prepared.options }));
    try {
      const sent = await context.ferry.sendBatch(queue.name, messages);
      sent.forEach((s, i) => {
        const r = ready[i] as (typeof ready)[number];
        successful.push({
          Id: r.id,
          MessageId: s.id,
          ...r.prepared.answer,
          ...(queue.fifo ? { SequenceNumber: sequenceNumber(s.id) } : {}),
        });
      });
    } catch (error) {
      // All or nothing in Ferry: each entry that was fine fails with the batch's reason.
      for (const r of ready) failed.push(failure(r.id, error));
    }
  }
  return { Successful: successful, Failed: failed };
}

const SYSTEM_ATTRIBUTES = [
  'SenderId',
  'SentTimestamp',
  'ApproximateReceiveCount',
  'ApproximateFirstReceiveTimestamp',
  'SequenceNumber',
  'MessageDeduplicationId',
  'MessageGroupId',
  'AWSTraceHeader',
  'DeadLetterQueueSourceArn',
];

function systemAttributes(context: ActionContext, queue: SqsQueue, d: Delivery, now: number): Record<string, string> {
  const all: Record<string, string | undefined> = {
    SenderId: context.grant.id === 'anonymous' ? '000000000000' : context.grant.id,
    SentTimestamp: String(Date.parse(d.sentAt)),
    ApproximateReceiveCount: String(d.attempt),
    // Ferry keeps when the current delivery started, not the first: known only for a first receive.
    ApproximateFirstReceiveTimestamp: d.attempt === 1 ? String(now) : undefined,
    SequenceNumber: queue.fifo ? sequenceNumber(d.id) : undefined,
    MessageDeduplicationId: d.headers[DEDUPE_HEADER],
    MessageGroupId: queue.fifo ? (d.key ?? undefined) : d.headers[GROUP_HEADER],
    AWSTraceHeader: d.headers[TRACE_HEADER],
    DeadLetterQueueSourceArn: d.headers[DEAD_LETTER_HEADER]
      ? queueArn(context.region, (d.headers[DEAD_LETTER_HEADER] as string).split('/')[0] as string)
      : undefined,
  };
  const answer: Record<string, string> = {};
  for (const [name, value] of Object.entries(all)) if (value !== undefined) answer[name] = value;
  return answer;
}

export async function receiveMessage(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'receive');
  const max = optionalInteger(input, 'MaxNumberOfMessages', 1, 10) ?? 1;
  const visibility = optionalInteger(input, 'VisibilityTimeout', 0, 43_200);
  const wait =
    optionalInteger(input, 'WaitTimeSeconds', 0, 20) ?? numberAttribute(queue, 'ReceiveMessageWaitTimeSeconds');
  const attemptId = optionalString(input, 'ReceiveRequestAttemptId');
  if (attemptId !== undefined && !TAG_ID.test(attemptId)) {
    throw invalidValue('ReceiveRequestAttemptId', attemptId, 'must be 1 to 128 printable ASCII characters.');
  }
  const requested = [...stringList(input, 'AttributeNames'), ...stringList(input, 'MessageSystemAttributeNames')];
  for (const name of requested) {
    if (name !== 'All' && !SYSTEM_ATTRIBUTES.includes(name))
      throw new SqsError('InvalidAttributeName', `Unknown Attribute ${name}.`);
  }
  const wantedAttributes = stringList(input, 'MessageAttributeNames');
  // Only a wait needs the signal: a receive that does not wait makes none (its controller and listener).
  const deliveries = await context.ferry.receive(queue.name, {
    max,
    wait: wait * 1000,
    ...(visibility === undefined ? {} : { lease: leaseOf(visibility) }),
    ...(wait > 0 ? { signal: context.signal } : {}),
  });
  if (deliveries.length > 0 && context.gone) {
    // Nobody is left to answer: hand the messages back rather than hide them for a whole visibility timeout.
    await Promise.allSettled(deliveries.map((d) => context.ferry.release(d)));
    return { Messages: [] };
  }
  const now = Date.now();
  const all = requested.includes('All');
  const messages = deliveries.map((d) => {
    const body = typeof d.payload === 'string' ? d.payload : JSON.stringify(d.payload);
    const message: Output = { MessageId: d.id, ReceiptHandle: receiptHandle(d), MD5OfBody: md5Hex(body), Body: body };
    if (requested.length > 0) {
      const system = systemAttributes(context, queue, d, now);
      const chosen: Record<string, string> = {};
      for (const [name, value] of Object.entries(system)) if (all || requested.includes(name)) chosen[name] = value;
      if (Object.keys(chosen).length > 0) message.Attributes = chosen;
    }
    // SQS returns no message attributes unless asked for some: the headers are read only then.
    if (wantedAttributes.length > 0) {
      const attributes: Record<string, AttributeValue> = selectAttributes(fromHeaders(d.headers), wantedAttributes);
      const md5 = md5OfAttributes(attributes);
      if (md5) {
        message.MD5OfMessageAttributes = md5;
        message.MessageAttributes = attributeOutput(attributes);
      }
    }
    return message;
  });
  return { Messages: messages };
}

async function deleteOne(context: ActionContext, queue: SqsQueue, handle: string): Promise<void> {
  const ref = parseReceiptHandle(handle);
  // Only a token limited to some queues has a handle's queue to check (a read); others skip the await.
  if (context.grant.queues !== null) await checkHandleQueue(context, ref, queue.name);
  try {
    await context.ferry.ack(ref);
  } catch (error) {
    // SQS answers success for a handle that was already used or has expired; the message is unchanged.
    if (!isLeaseLost(error)) throw error;
  }
}

export async function deleteMessage(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'receive');
  await deleteOne(context, queue, requiredString(input, 'ReceiptHandle'));
  return {};
}

export async function deleteMessageBatch(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'receive');
  const entries = batchEntries(input);
  const outcomes = await Promise.allSettled(
    entries.map((e) => deleteOne(context, queue, requiredString(e, 'ReceiptHandle'))),
  );
  return settle(entries, outcomes);
}

function settle(entries: Input[], outcomes: PromiseSettledResult<unknown>[]): Output {
  const successful: Output[] = [];
  const failed: Failed[] = [];
  outcomes.forEach((outcome, i) => {
    const id = (entries[i] as Input).Id as string;
    if (outcome.status === 'fulfilled') successful.push({ Id: id });
    else failed.push(failure(id, outcome.reason));
  });
  return { Successful: successful, Failed: failed };
}

async function changeOne(context: ActionContext, queue: SqsQueue, entry: Input): Promise<void> {
  const handle = requiredString(entry, 'ReceiptHandle');
  const seconds = optionalInteger(entry, 'VisibilityTimeout', 0, 43_200);
  if (seconds === undefined) throw missing('VisibilityTimeout');
  const ref = parseReceiptHandle(handle);
  await checkHandleQueue(context, ref, queue.name);
  try {
    if (seconds === 0) {
      await context.ferry.nack(ref, {
        delay: 0,
        error: { name: 'VisibilityTimeout', message: 'visibility timeout set to 0' },
      });
    } else {
      await context.ferry.extend(ref, seconds * 1000);
    }
  } catch (error) {
    if (isLeaseLost(error)) {
      throw new SqsError(
        'MessageNotInflight',
        `Value ${handle.slice(0, 80)} for parameter ReceiptHandle is invalid. Reason: The message is not in flight: its visibility timeout ran out or it was deleted.`,
      );
    }
    throw error;
  }
}

export async function changeMessageVisibility(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'receive');
  await changeOne(context, queue, input);
  return {};
}

export async function changeMessageVisibilityBatch(context: ActionContext, input: Input): Promise<Output> {
  const queue = await targetQueue(context, input, 'receive');
  const entries = batchEntries(input);
  const outcomes = await Promise.allSettled(entries.map((e) => changeOne(context, queue, e)));
  return settle(entries, outcomes);
}
