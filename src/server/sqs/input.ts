/**
 * Reading an action's input, the same for both protocols: the JSON protocol gives it as sent, the query
 * protocol's adapter rebuilds the same shape from form pairs (numbers still as text, hence the leniency).
 */
import { LEASE_MIN } from '../../core/validate.ts';
import type { AttributeValue } from './digest.ts';
import { invalidValue, missing, SqsError } from './errors.ts';

export type Input = Record<string, unknown>;

export function optionalString(input: Input, name: string): string | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string') throw invalidValue(name, value, 'must be a string.');
  return value;
}

export function requiredString(input: Input, name: string): string {
  const value = optionalString(input, name);
  if (value === undefined) throw missing(name);
  return value;
}

export function optionalInteger(input: Input, name: string, min: number, max: number): number | undefined {
  const value = input[name];
  if (value === undefined || value === null) return undefined;
  const n = typeof value === 'string' && /^-?\d{1,12}$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    throw invalidValue(name, value, `must be an integer from ${min} to ${max}.`);
  }
  return n;
}

export function stringList(input: Input, name: string): string[] {
  const value = input[name];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) {
    throw invalidValue(name, value, 'must be a list of strings.');
  }
  return value as string[];
}

export function stringMap(input: Input, name: string): Record<string, string> {
  const value = input[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidValue(name, value, 'must be a map of strings.');
  const map: Record<string, string> = {};
  for (const [key, v] of Object.entries(value)) {
    if (typeof v !== 'string') throw invalidValue(`${name}.${key}`, v, 'must be a string.');
    map[key] = v;
  }
  return map;
}

export function objectList(input: Input, name: string): Input[] {
  const value = input[name];
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value) || value.some((v) => v === null || typeof v !== 'object' || Array.isArray(v))) {
    throw invalidValue(name, '…', 'must be a list of entries.');
  }
  return value as Input[];
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** Message (or system) attributes with binary values decoded from base64. */
export function attributeMap(input: Input, name: string): Record<string, AttributeValue> {
  const value = input[name];
  if (value === undefined || value === null) return {};
  if (typeof value !== 'object' || Array.isArray(value)) throw invalidValue(name, '…', 'must be a map of attributes.');
  const attributes: Record<string, AttributeValue> = {};
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    if (raw === null || typeof raw !== 'object')
      throw invalidValue(`${name}.${key}`, raw, 'must be an attribute value.');
    const v = raw as Record<string, unknown>;
    if (v.StringListValues !== undefined || v.BinaryListValues !== undefined) {
      throw new SqsError(
        'InvalidParameterValue',
        `The message attribute '${key}': StringListValues and BinaryListValues are not implemented (nor are they by SQS).`,
      );
    }
    const attribute: AttributeValue = { DataType: v.DataType as string };
    if (v.DataType === undefined)
      throw new SqsError('InvalidParameterValue', `The message attribute '${key}' must contain a DataType.`);
    if (v.StringValue !== undefined) {
      if (typeof v.StringValue !== 'string')
        throw invalidValue(`${name}.${key}.StringValue`, v.StringValue, 'must be a string.');
      attribute.StringValue = v.StringValue;
    }
    if (v.BinaryValue !== undefined) {
      if (typeof v.BinaryValue !== 'string' || v.BinaryValue.length % 4 !== 0 || !BASE64.test(v.BinaryValue)) {
        throw invalidValue(`${name}.${key}.BinaryValue`, v.BinaryValue, 'must be base64.');
      }
      attribute.BinaryValue = Buffer.from(v.BinaryValue, 'base64');
    }
    attributes[key] = attribute;
  }
  return attributes;
}

/** Attributes as answered: binary values in base64. */
export function attributeOutput(attributes: Record<string, AttributeValue>): Record<string, Record<string, string>> {
  const out: Record<string, Record<string, string>> = {};
  for (const [name, value] of Object.entries(attributes)) {
    out[name] =
      value.BinaryValue !== undefined
        ? { DataType: value.DataType, BinaryValue: Buffer.from(value.BinaryValue).toString('base64') }
        : { DataType: value.DataType, StringValue: value.StringValue ?? '' };
  }
  return out;
}

/** A visibility timeout in seconds as a Ferry lease: 0 (visible again at once) is Ferry's shortest lease. */
export function leaseOf(seconds: number): number {
  return Math.max(LEASE_MIN, seconds * 1000);
}

/** The Entries of a batch action: 1 to 10, ids distinct and well formed. */
export function batchEntries(input: Input): Input[] {
  const entries = objectList(input, 'Entries');
  if (entries.length === 0)
    throw new SqsError('EmptyBatchRequest', 'There should be at least one entry in the request.');
  if (entries.length > 10) {
    throw new SqsError(
      'TooManyEntriesInBatchRequest',
      `Maximum number of entries per request are 10. You have sent ${entries.length}.`,
    );
  }
  const seen = new Set<string>();
  for (const entry of entries) {
    const id = entry.Id;
    if (typeof id !== 'string' || !/^[A-Za-z0-9_-]{1,80}$/.test(id)) {
      throw new SqsError(
        'InvalidBatchEntryId',
        'A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long.',
      );
    }
    if (seen.has(id)) throw new SqsError('BatchEntryIdsNotDistinct', `Id ${id} repeated.`);
    seen.add(id);
  }
  return entries;
}
