/**
 * AWS Signature Version 4, verified (the server side has no well-kept standalone verifier). Both forms SDKs
 * and CLIs send: the `Authorization` header, and the query string of a presigned URL. The canonical request is
 * rebuilt from the request as it arrived, the way `@smithy/signature-v4` builds it before sending (tested
 * against that signer): path segments normalized and escaped once more, query pairs escaped and sorted,
 * the signed headers with their values trimmed, and the SHA-256 of the body as received.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { Grant, TokenSet } from '../tokens.ts';
import { SqsError } from './errors.ts';

const ALGORITHM = 'AWS4-HMAC-SHA256';
/** How far a request's time may be from ours, either way, as AWS allows. */
export const MAX_SKEW_MS = 5 * 60_000;
const MAX_PRESIGN_SECONDS = 7 * 86_400;

export interface SignedRequest {
  method: string;
  /** The path as it arrived, still percent-encoded, without the query string. */
  path: string;
  /** The raw query string, without `?`. */
  query: string;
  /** Lower-case names, as Node gives them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** RFC 3986 escaping, as the signer does it. */
function uriEscape(text: string): string {
  return encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function decode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new SqsError('MalformedQueryString', 'the query string is not valid percent-encoding');
  }
}

export function parseQuery(query: string): [string, string][] {
  if (query === '') return [];
  return query
    .split('&')
    .filter((pair) => pair !== '')
    .map((pair) => {
      const at = pair.indexOf('=');
      return at < 0 ? [decode(pair), ''] : [decode(pair.slice(0, at)), decode(pair.slice(at + 1))];
    });
}

function canonicalPath(path: string): string {
  const segments: string[] = [];
  for (const segment of path.split('/')) {
    if (segment === '' || segment === '.') continue;
    if (segment === '..') segments.pop();
    else segments.push(segment);
  }
  const normalized = `/${segments.join('/')}${segments.length > 0 && path.endsWith('/') ? '/' : ''}`;
  return uriEscape(normalized).replace(/%2F/g, '/');
}

function canonicalQuery(pairs: [string, string][]): string {
  return pairs
    .filter(([key]) => key.toLowerCase() !== 'x-amz-signature')
    .map(([key, value]) => [uriEscape(key), uriEscape(value)] as const)
    .sort(([a, x], [b, y]) => (a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
}

function headerValue(value: string | string[] | undefined): string {
  const text = Array.isArray(value) ? value.join(',') : (value ?? '');
  return text
    .replace(/[\r\n]/g, ' ')
    .replace(/[ \t]+/g, ' ')
    .replace(/^ | $/g, '');
}

const sha256Hex = (data: string | Buffer): string => createHash('sha256').update(data).digest('hex');
const hmac = (key: Buffer | string, data: string): Buffer => createHmac('sha256', key).update(data, 'utf8').digest();

/** `20260130T120000Z` → epoch ms, or NaN. */
function parseAmzDate(text: string): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]), Number(m[4]), Number(m[5]), Number(m[6]));
}

interface Parts {
  credential: string;
  signedHeaders: string;
  signature: string;
  amzDate: string;
  /** Seconds a presigned URL stays valid; null for a header signature. */
  expires: number | null;
}

function fromHeader(authorization: string, headers: SignedRequest['headers']): Parts {
  if (!authorization.startsWith(`${ALGORITHM} `)) {
    throw new SqsError('IncompleteSignature', `the Authorization header must use ${ALGORITHM}`);
  }
  const fields = new Map<string, string>();
  for (const part of authorization.slice(ALGORITHM.length + 1).split(',')) {
    const at = part.indexOf('=');
    if (at > 0) fields.set(part.slice(0, at).trim(), part.slice(at + 1).trim());
  }
  const credential = fields.get('Credential');
  const signedHeaders = fields.get('SignedHeaders');
  const signature = fields.get('Signature');
  if (!credential || !signedHeaders || !signature) {
    throw new SqsError('IncompleteSignature', 'the Authorization header needs Credential, SignedHeaders and Signature');
  }
  const amzDate = headerValue(headers['x-amz-date']);
  if (amzDate === '') throw new SqsError('IncompleteSignature', 'a signed request needs an X-Amz-Date header');
  return { credential, signedHeaders, signature, amzDate, expires: null };
}

function fromQuery(pairs: [string, string][]): Parts | null {
  const get = (name: string) => pairs.find(([key]) => key === name)?.[1];
  const algorithm = get('X-Amz-Algorithm');
  if (algorithm === undefined) return null;
  if (algorithm !== ALGORITHM) throw new SqsError('IncompleteSignature', `X-Amz-Algorithm must be ${ALGORITHM}`);
  const credential = get('X-Amz-Credential');
  const signedHeaders = get('X-Amz-SignedHeaders');
  const signature = get('X-Amz-Signature');
  const amzDate = get('X-Amz-Date');
  const expiresText = get('X-Amz-Expires') ?? '';
  if (!credential || !signedHeaders || !signature || !amzDate || !/^\d{1,7}$/.test(expiresText)) {
    throw new SqsError(
      'IncompleteSignature',
      'a presigned request needs X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature',
    );
  }
  const expires = Number(expiresText);
  if (expires < 1 || expires > MAX_PRESIGN_SECONDS) {
    throw new SqsError('InvalidParameterValue', `X-Amz-Expires must be from 1 to ${MAX_PRESIGN_SECONDS} seconds`);
  }
  return { credential, signedHeaders, signature, amzDate, expires };
}

/** Signing keys by secret, day, region and service: deriving one costs four HMACs per request otherwise. */
const keys = new Map<string, Buffer>();

function signingKey(secret: string, day: string, region: string, service: string): Buffer {
  const id = `${sha256Hex(secret)}/${day}/${region}/${service}`;
  let key = keys.get(id);
  if (!key) {
    key = hmac(hmac(hmac(hmac(`AWS4${secret}`, day), region), service), 'aws4_request');
    if (keys.size >= 64) keys.delete(keys.keys().next().value as string);
    keys.set(id, key);
  }
  return key;
}

/**
 * The grant of a signed request, or an {@link SqsError}: `MissingAuthenticationToken` (unsigned),
 * `IncompleteSignature`, `InvalidClientTokenId` (unknown access key id), `SignatureDoesNotMatch` (wrong
 * secret, altered request, or a time more than 5 minutes off) or `RequestExpired` (a presigned URL past its
 * `X-Amz-Expires`).
 */
export function verifySignature(request: SignedRequest, tokens: TokenSet, now: number): Grant {
  const pairs = parseQuery(request.query);
  const authorization = request.headers.authorization;
  const parts = typeof authorization === 'string' ? fromHeader(authorization, request.headers) : fromQuery(pairs);
  if (!parts) {
    throw new SqsError(
      'MissingAuthenticationToken',
      'Request is missing Authentication Token: sign it with AWS Signature V4, using an access key id of a Ferry token',
    );
  }
  const scope = parts.credential.split('/');
  const [accessKeyId = '', day = '', region = '', service = '', terminator = ''] = scope;
  if (scope.length !== 5 || terminator !== 'aws4_request' || !/^\d{8}$/.test(day)) {
    throw new SqsError(
      'IncompleteSignature',
      'the credential must be ACCESS_KEY_ID/YYYYMMDD/REGION/SERVICE/aws4_request',
    );
  }
  const key = tokens.accessKey(accessKeyId);
  if (!key) throw new SqsError('InvalidClientTokenId', 'The security token included in the request is invalid.');

  const at = parseAmzDate(parts.amzDate);
  if (Number.isNaN(at) || parts.amzDate.slice(0, 8) !== day) {
    throw new SqsError('IncompleteSignature', 'X-Amz-Date must be YYYYMMDDTHHMMSSZ, on the day of the credential');
  }
  if (at > now + MAX_SKEW_MS || (parts.expires === null && at < now - MAX_SKEW_MS)) {
    throw new SqsError(
      'SignatureDoesNotMatch',
      `Signature expired: ${parts.amzDate} is more than 5 minutes from the server's time ${new Date(now).toISOString()}`,
    );
  }
  if (parts.expires !== null && now > at + parts.expires * 1000) {
    throw new SqsError('RequestExpired', 'Request has expired.');
  }

  const signed = parts.signedHeaders.split(';');
  if (!signed.includes('host')) throw new SqsError('IncompleteSignature', 'the host header must be signed');
  const canonicalHeaders = signed.map((name) => `${name}:${headerValue(request.headers[name])}\n`).join('');
  const canonical = [
    request.method,
    canonicalPath(request.path),
    canonicalQuery(pairs),
    canonicalHeaders,
    parts.signedHeaders,
    sha256Hex(request.body),
  ].join('\n');
  const stringToSign = [ALGORITHM, parts.amzDate, scope.slice(1).join('/'), sha256Hex(canonical)].join('\n');
  const expected = createHmac('sha256', signingKey(key.secret, day, region, service))
    .update(stringToSign, 'utf8')
    .digest();
  const given = Buffer.from(parts.signature, 'hex');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw new SqsError(
      'SignatureDoesNotMatch',
      'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.',
    );
  }
  return key.grant;
}
