/**
 * SQS's errors, each with the two names the protocols use: the shape name of the JSON protocol (`__type`,
 * what SDKs name the exception) and the code of the query protocol (`<Code>`, also sent to JSON clients in
 * `x-amzn-query-error`, since SQS's JSON protocol is "query compatible"). The pairs and statuses are those of
 * SQS's own model (`awsQueryError` traits), so SDKs raise the same exception classes as against AWS.
 */
import { FerryError } from '../../core/errors.ts';

interface Kind {
  /** The query protocol's code. */
  query: string;
  status: number;
  /** Who is at fault, as the query protocol says it. */
  fault: 'Sender' | 'Receiver';
}

const sender = (query: string, status = 400): Kind => ({ query, status, fault: 'Sender' });

export const SQS_ERRORS = {
  // Modelled errors: the JSON name differs from the query code for most.
  QueueDoesNotExist: sender('AWS.SimpleQueueService.NonExistentQueue'),
  QueueNameExists: sender('QueueAlreadyExists'),
  ReceiptHandleIsInvalid: sender('ReceiptHandleIsInvalid', 404),
  MessageNotInflight: sender('AWS.SimpleQueueService.MessageNotInflight'),
  InvalidAttributeName: sender('InvalidAttributeName'),
  InvalidAttributeValue: sender('InvalidAttributeValue'),
  InvalidMessageContents: sender('InvalidMessageContents'),
  BatchEntryIdsNotDistinct: sender('AWS.SimpleQueueService.BatchEntryIdsNotDistinct'),
  BatchRequestTooLong: sender('AWS.SimpleQueueService.BatchRequestTooLong'),
  EmptyBatchRequest: sender('AWS.SimpleQueueService.EmptyBatchRequest'),
  InvalidBatchEntryId: sender('AWS.SimpleQueueService.InvalidBatchEntryId'),
  TooManyEntriesInBatchRequest: sender('AWS.SimpleQueueService.TooManyEntriesInBatchRequest'),
  UnsupportedOperation: sender('AWS.SimpleQueueService.UnsupportedOperation'),
  InvalidAddress: sender('InvalidAddress', 404),
  RequestThrottled: sender('RequestThrottled', 403),
  // Common errors of every AWS query service: the same name in both protocols.
  InvalidParameterValue: sender('InvalidParameterValue'),
  MissingParameter: sender('MissingParameter'),
  InvalidAction: sender('InvalidAction'),
  MalformedQueryString: sender('MalformedQueryString'),
  SerializationException: sender('SerializationException'),
  RequestEntityTooLarge: sender('RequestEntityTooLarge', 413),
  AccessDenied: sender('AccessDenied', 403),
  MissingAuthenticationToken: sender('MissingAuthenticationToken', 403),
  IncompleteSignature: sender('IncompleteSignature'),
  InvalidClientTokenId: sender('InvalidClientTokenId', 403),
  SignatureDoesNotMatch: sender('SignatureDoesNotMatch', 403),
  RequestExpired: sender('RequestExpired'),
  ServiceUnavailable: { query: 'ServiceUnavailable', status: 503, fault: 'Receiver' },
  InternalFailure: { query: 'InternalFailure', status: 500, fault: 'Receiver' },
} satisfies Record<string, Kind>;

export type SqsErrorName = keyof typeof SQS_ERRORS;

export class SqsError extends Error {
  readonly kind: Kind;
  constructor(
    readonly code: SqsErrorName,
    message: string,
  ) {
    super(message);
    this.name = code;
    this.kind = SQS_ERRORS[code];
  }
}

/** SQS's usual wording for a parameter it refuses. */
export function invalidValue(parameter: string, value: unknown, reason: string): SqsError {
  const shown = typeof value === 'string' ? value.slice(0, 80) : JSON.stringify(value)?.slice(0, 80);
  return new SqsError(
    'InvalidParameterValue',
    `Value ${shown} for parameter ${parameter} is invalid. Reason: ${reason}`,
  );
}

export function missing(parameter: string): SqsError {
  return new SqsError('MissingParameter', `The request must contain the parameter ${parameter}.`);
}

export function noSuchQueue(): SqsError {
  return new SqsError('QueueDoesNotExist', 'The specified queue does not exist.');
}

/** Ferry's own errors, as SQS would have said them. */
export function toSqsError(error: unknown): SqsError {
  if (error instanceof SqsError) return error;
  if (error instanceof FerryError) {
    switch (error.code) {
      case 'invalid_request':
      case 'payload_too_large':
        return new SqsError('InvalidParameterValue', error.message);
      case 'forbidden':
      case 'unauthorized':
        return new SqsError('AccessDenied', error.message);
      case 'rate_limited':
        return new SqsError('RequestThrottled', error.message);
      case 'unavailable':
      case 'timeout':
        return new SqsError('ServiceUnavailable', error.message);
      default:
        return new SqsError('InvalidParameterValue', error.message);
    }
  }
  return new SqsError('InternalFailure', 'internal error; see the server log');
}
