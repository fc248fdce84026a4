/**
 * Message attributes ↔ Ferry headers. Each attribute becomes the header of the same name (Binary values in
 * base64), so a Ferry consumer reads `traceparent` or `tenant` as it would any header, and each header of a
 * message sent through Ferry comes back to SQS clients as a String attribute. Types other than plain `String`
 * are kept in one header, `ferry-sqs-types`; the other `ferry-sqs-*` headers hold what SQS keeps beside the
 * body (deduplication id, message group of a standard queue, the X-Ray trace header).
 */
import { DEAD_LETTER_HEADER } from '../../store/constants.ts';
import type { AttributeValue } from './digest.ts';
import { invalidValue, SqsError } from './errors.ts';

export const TYPES_HEADER = 'ferry-sqs-types';
export const DEDUPE_HEADER = 'ferry-sqs-deduplication-id';
export const GROUP_HEADER = 'ferry-sqs-group-id';
export const TRACE_HEADER = 'ferry-sqs-aws-trace-header';
// Set by Ferry's dead-letter copy (SPEC §6): `<queue>/<id>` of the message that died.
export { DEAD_LETTER_HEADER };

const RESERVED = 'ferry-sqs-';

const MAX_ATTRIBUTES = 10;
const NAME = /^[A-Za-z0-9_.-]{1,256}$/;
const DATA_TYPE = /^(String|Number|Binary)(\.[A-Za-z0-9_.-]{1,249})?$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

export function validAttributeName(name: string): boolean {
  return (
    NAME.test(name) &&
    !name.startsWith('.') &&
    !name.endsWith('.') &&
    !name.includes('..') &&
    !/^(aws|amazon)\./i.test(name) &&
    !name.startsWith(RESERVED)
  );
}

/** Checks attributes as given by a client (binary values already decoded) and answers their size in bytes. */
export function checkAttributes(attributes: Record<string, AttributeValue>, parameter = 'MessageAttributes'): number {
  const names = Object.keys(attributes);
  if (names.length > MAX_ATTRIBUTES) {
    throw invalidValue(
      parameter,
      `${names.length} attributes`,
      `a message may carry at most ${MAX_ATTRIBUTES} attributes.`,
    );
  }
  let bytes = 0;
  for (const name of names) {
    const value = attributes[name] as AttributeValue;
    if (!validAttributeName(name)) {
      throw new SqsError(
        'InvalidParameterValue',
        `Message attribute name '${name.slice(0, 80)}' is invalid: use up to 256 letters, digits, '-', '_' and '.', not starting or ending with '.', without '..', not starting with 'AWS.', 'Amazon.' or '${RESERVED}'.`,
      );
    }
    if (typeof value.DataType !== 'string' || !DATA_TYPE.test(value.DataType)) {
      throw new SqsError(
        'InvalidParameterValue',
        `The message attribute '${name}' has an invalid message attribute type: use String, Number or Binary, optionally followed by .label.`,
      );
    }
    if (value.DataType.startsWith('Binary')) {
      if (!value.BinaryValue || value.BinaryValue.length === 0 || value.StringValue !== undefined) {
        throw new SqsError(
          'InvalidParameterValue',
          `The message attribute '${name}' of type Binary must carry a non-empty BinaryValue only.`,
        );
      }
      bytes += value.BinaryValue.length;
    } else {
      if (typeof value.StringValue !== 'string' || value.StringValue === '' || value.BinaryValue !== undefined) {
        throw new SqsError(
          'InvalidParameterValue',
          `The message attribute '${name}' must contain a non-empty StringValue only.`,
        );
      }
      if (value.DataType.startsWith('Number') && !NUMBER.test(value.StringValue)) {
        throw new SqsError(
          'InvalidParameterValue',
          `The message attribute '${name}' of type Number must hold a number.`,
        );
      }
      if (!validText(value.StringValue)) {
        throw new SqsError(
          'InvalidMessageContents',
          `The message attribute '${name}' holds characters outside those SQS allows.`,
        );
      }
      bytes += Buffer.byteLength(value.StringValue, 'utf8');
    }
    bytes += Buffer.byteLength(name, 'utf8') + value.DataType.length;
  }
  return bytes;
}

/** The characters SQS allows in a body and in string attributes: #x9 #xA #xD #x20–#xD7FF #xE000–#xFFFD #x10000–#x10FFFF. */
export function validText(text: string): boolean {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters refused
  return !/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(
    text,
  );
}

/** Headers holding the attributes (plus `extra`, already named). */
export function toHeaders(
  attributes: Record<string, AttributeValue>,
  extra: Record<string, string>,
): Record<string, string> {
  const headers: Record<string, string> = {};
  const types: Record<string, string> = {};
  for (const [name, value] of Object.entries(attributes)) {
    headers[name] = value.DataType.startsWith('Binary')
      ? Buffer.from(value.BinaryValue ?? new Uint8Array()).toString('base64')
      : (value.StringValue ?? '');
    if (value.DataType !== 'String') types[name] = value.DataType;
  }
  if (Object.keys(types).length > 0) headers[TYPES_HEADER] = JSON.stringify(types);
  return { ...headers, ...extra };
}

/** The message attributes a message's headers hold: every header whose name SQS allows. */
export function fromHeaders(headers: Record<string, string>): Record<string, AttributeValue> {
  let types: Record<string, unknown> = {};
  const typesText = headers[TYPES_HEADER];
  if (typesText !== undefined) {
    try {
      const parsed = JSON.parse(typesText) as unknown;
      if (parsed && typeof parsed === 'object') types = parsed as Record<string, unknown>;
    } catch {
      // Written by someone else than this module: every value reads as String.
    }
  }
  const attributes: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (!validAttributeName(name) || name === DEAD_LETTER_HEADER) continue;
    const type = types[name];
    const dataType = typeof type === 'string' && DATA_TYPE.test(type) ? type : 'String';
    if (dataType.startsWith('Binary'))
      attributes[name] = { DataType: dataType, BinaryValue: Buffer.from(value, 'base64') };
    else if (value !== '') attributes[name] = { DataType: dataType, StringValue: value };
  }
  return attributes;
}

/**
 * The attributes a ReceiveMessage asked for: `All` or `.*`, names, and prefixes such as `bar.*`.
 * SQS returns none unless asked.
 */
export function selectAttributes(
  attributes: Record<string, AttributeValue>,
  requested: readonly string[] | undefined,
): Record<string, AttributeValue> {
  if (!requested || requested.length === 0) return {};
  if (requested.includes('All') || requested.includes('.*')) return attributes;
  const chosen: Record<string, AttributeValue> = {};
  for (const [name, value] of Object.entries(attributes)) {
    const wanted = requested.some((r) => (r.endsWith('.*') ? name.startsWith(r.slice(0, -1)) : r === name));
    if (wanted) chosen[name] = value;
  }
  return chosen;
}
