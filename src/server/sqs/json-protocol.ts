/**
 * The JSON protocol (`X-Amz-Target: AmazonSQS.<Action>`, `application/x-amz-json-1.0`), as current SDKs
 * speak it. SQS's JSON protocol is "query compatible": an error carries its query code in
 * `x-amzn-query-error`, from which SDKs pick the exception class.
 */
import { SqsError } from './errors.ts';
import type { Input } from './input.ts';

export const JSON_TYPE = 'application/x-amz-json-1.0';
const TARGET = /^AmazonSQS\.([A-Za-z]{1,64})$/;

export interface Answer {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export function parseJsonRequest(target: string, body: Buffer): { action: string; input: Input } {
  const match = TARGET.exec(target);
  if (!match) {
    throw new SqsError(
      'InvalidAction',
      `X-Amz-Target must be AmazonSQS.<Action>; got ${JSON.stringify(target.slice(0, 80))}`,
    );
  }
  const action = match[1] as string;
  if (body.length === 0) return { action, input: {} };
  let input: unknown;
  try {
    input = JSON.parse(body.toString('utf8'));
  } catch {
    throw new SqsError('SerializationException', 'The request body is not valid JSON.');
  }
  if (input === null || typeof input !== 'object' || Array.isArray(input)) {
    throw new SqsError('SerializationException', 'The request body must be a JSON object.');
  }
  return { action, input: input as Input };
}

export function jsonAnswer(output: Record<string, unknown>): Answer {
  return { status: 200, headers: { 'content-type': JSON_TYPE }, body: JSON.stringify(output) };
}

export function jsonError(error: SqsError): Answer {
  return {
    status: error.kind.status,
    headers: { 'content-type': JSON_TYPE, 'x-amzn-query-error': `${error.kind.query};${error.kind.fault}` },
    body: JSON.stringify({ __type: `com.amazonaws.sqs#${error.code}`, message: error.message }),
  };
}
