/**
 * The query protocol (form-encoded `Action=…`, answered in XML), as older SDKs and CLIs speak it. Requests are
 * turned into the JSON protocol's input shape and answers back from its output shape, so each action exists
 * once. The names follow SQS's model (its `xmlName` and `xmlFlattened` traits): `Attribute.1.Name` for the
 * `Attributes` map, `SendMessageBatchRequestEntry.1.Id` for `Entries`, and so on.
 */
import { XMLBuilder } from 'fast-xml-parser';
import { SqsError } from './errors.ts';
import type { Input } from './input.ts';
import type { Answer } from './json-protocol.ts';

const NAMESPACE = 'http://queue.amazonaws.com/doc/2012-11-05/';

/** Query names of string lists, and their input names. */
const LISTS: Record<string, string> = {
  AttributeName: 'AttributeNames',
  MessageAttributeName: 'MessageAttributeNames',
  MessageSystemAttributeName: 'MessageSystemAttributeNames',
  TagKey: 'TagKeys',
};
/** Query names of maps: input name, the entry's key and value fields. */
const MAPS: Record<string, [string, string, string]> = {
  Attribute: ['Attributes', 'Name', 'Value'],
  MessageAttribute: ['MessageAttributes', 'Name', 'Value'],
  MessageSystemAttribute: ['MessageSystemAttributes', 'Name', 'Value'],
  Tag: ['Tags', 'Key', 'Value'],
};
const ENTRIES = new Set([
  'SendMessageBatchRequestEntry',
  'DeleteMessageBatchRequestEntry',
  'ChangeMessageVisibilityBatchRequestEntry',
]);

function malformed(key: string): SqsError {
  return new SqsError('MalformedQueryString', `The parameter ${key.slice(0, 120)} is not well formed.`);
}

/** Groups `N.rest` pairs by N, in numeric order. */
function byIndex(head: string, pairs: [string, string][]): [string, string][][] {
  const groups = new Map<number, [string, string][]>();
  for (const [key, value] of pairs) {
    const dot = key.indexOf('.');
    const index = dot < 0 ? key : key.slice(0, dot);
    if (!/^[1-9]\d{0,3}$/.test(index)) throw malformed(`${head}.${key}`);
    const n = Number(index);
    if (!groups.has(n)) groups.set(n, []);
    (groups.get(n) as [string, string][]).push([dot < 0 ? '' : key.slice(dot + 1), value]);
  }
  return [...groups.entries()].sort(([a], [b]) => a - b).map(([, group]) => group);
}

/** Rebuilds the nested input from flat `A.1.B` pairs. */
function build(pairs: [string, string][]): Input {
  const heads = new Map<string, [string, string][]>();
  const input: Input = {};
  for (const [key, value] of pairs) {
    const dot = key.indexOf('.');
    if (dot < 0) {
      if (key === '') continue;
      input[key] = value;
      continue;
    }
    const head = key.slice(0, dot);
    if (!heads.has(head)) heads.set(head, []);
    (heads.get(head) as [string, string][]).push([key.slice(dot + 1), value]);
  }
  for (const [head, rest] of heads) {
    const list = LISTS[head];
    const map = MAPS[head];
    if (list !== undefined) {
      input[list] = byIndex(head, rest).map((group) => {
        const [only] = group;
        if (group.length !== 1 || !only || only[0] !== '') throw malformed(head);
        return only[1];
      });
    } else if (map !== undefined) {
      const [name, keyField, valueField] = map;
      const out: Record<string, unknown> = {};
      for (const group of byIndex(head, rest)) {
        const entry = build(group);
        const key = entry[keyField];
        if (typeof key !== 'string')
          throw new SqsError('MissingParameter', `The request must contain the parameter ${head}.N.${keyField}.`);
        out[key] = entry[valueField];
      }
      input[name] = out;
    } else if (ENTRIES.has(head)) {
      input.Entries = byIndex(head, rest).map(build);
    } else {
      input[head] = build(rest);
    }
  }
  return input;
}

/** The action and its input of a query request: query-string pairs (signing ones aside) and form pairs. */
export function parseQueryRequest(pairs: [string, string][], path: string): { action: string; input: Input } {
  const fields = pairs.filter(([key]) => !key.startsWith('X-Amz-'));
  const input = build(fields);
  const action = input.Action;
  if (typeof action !== 'string' || action === '') {
    throw new SqsError('MissingParameter', 'The request must contain the parameter Action.');
  }
  delete input.Action;
  delete input.Version;
  // Older clients post to the queue URL itself instead of naming it.
  if (input.QueueUrl === undefined && path.split('/').filter(Boolean).length === 2) input.QueueUrl = path;
  // CreateQueue names its tags `tags` in the JSON protocol, `Tag.N` in the query protocol.
  if (action === 'CreateQueue' && input.Tags !== undefined) {
    input.tags = input.Tags;
    delete input.Tags;
  }
  return { action, input };
}

/** Form bodies: `+` is a space there, unlike in a signed query string. */
export function parseForm(body: string): [string, string][] {
  try {
    return [...new URLSearchParams(body)];
  } catch {
    throw new SqsError('MalformedQueryString', 'The form body is not valid.');
  }
}

const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\r': '&#xD;',
};
/** Escapes `\r` too, which XML parsers would otherwise turn into `\n` in a body. */
const escapeXml = (value: unknown) => String(value).replace(/[&<>"'\r]/g, (c) => ESCAPES[c] as string);

const builder = new XMLBuilder({
  ignoreAttributes: false,
  processEntities: false,
  tagValueProcessor: (_name, value) => escapeXml(value),
  attributeValueProcessor: (_name, value) => escapeXml(value),
});

const NO_RESULT = new Set([
  'DeleteQueue',
  'DeleteMessage',
  'ChangeMessageVisibility',
  'PurgeQueue',
  'SetQueueAttributes',
  'TagQueue',
  'UntagQueue',
]);

/** The JSON output shape, in the query protocol's element names. */
function toXml(value: Record<string, unknown>, action: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    if (key === 'Attributes') {
      out.Attribute = Object.entries(v as Record<string, string>).map(([Name, Value]) => ({ Name, Value }));
    } else if (key === 'MessageAttributes') {
      out.MessageAttribute = Object.entries(v as Record<string, unknown>).map(([Name, Value]) => ({ Name, Value }));
    } else if (key === 'Tags') {
      out.Tag = Object.entries(v as Record<string, string>).map(([Key, Value]) => ({ Key, Value }));
    } else if (key === 'Messages') {
      out.Message = (v as Record<string, unknown>[]).map((m) => toXml(m, action));
    } else if (key === 'QueueUrls' || key === 'queueUrls') {
      out.QueueUrl = v;
    } else if (key === 'Successful') {
      out[`${action}ResultEntry`] = (v as Record<string, unknown>[]).map((e) => toXml(e, action));
    } else if (key === 'Failed') {
      out.BatchResultErrorEntry = v;
    } else {
      out[key] = v;
    }
  }
  return out;
}

export function queryAnswer(action: string, output: Record<string, unknown>, requestId: string): Answer {
  const response: Record<string, unknown> = { '@_xmlns': NAMESPACE };
  if (!NO_RESULT.has(action)) response[`${action}Result`] = toXml(output, action);
  response.ResponseMetadata = { RequestId: requestId };
  return {
    status: 200,
    headers: { 'content-type': 'text/xml' },
    body: `<?xml version="1.0"?>${builder.build({ [`${action}Response`]: response })}`,
  };
}

export function queryError(error: SqsError, requestId: string): Answer {
  const body = builder.build({
    ErrorResponse: {
      '@_xmlns': NAMESPACE,
      Error: { Type: error.kind.fault, Code: error.kind.query, Message: error.message, Detail: '' },
      RequestId: requestId,
    },
  });
  return { status: error.kind.status, headers: { 'content-type': 'text/xml' }, body: `<?xml version="1.0"?>${body}` };
}
