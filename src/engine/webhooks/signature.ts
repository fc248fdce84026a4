/**
 * Standard Webhooks signatures (https://www.standardwebhooks.com): the secret is `whsec_` and the base64 of
 * the key; each request carries `webhook-id`, `webhook-timestamp` (Unix seconds) and `webhook-signature:
 * v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`.
 */
import { createHmac } from 'node:crypto';
import { InvalidRequestError } from '../../core/errors.ts';

const PREFIX = 'whsec_';
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** The key bytes of a `whsec_…` secret; throws `InvalidRequestError` naming what is wrong (never the secret). */
export function secretKey(secret: unknown): Buffer {
  if (typeof secret !== 'string' || !secret.startsWith(PREFIX)) {
    throw new InvalidRequestError(
      'secret must be a Standard Webhooks secret: whsec_ followed by base64 of 24 to 64 bytes',
    );
  }
  const body = secret.slice(PREFIX.length);
  if (!BASE64.test(body) || body.length % 4 === 1) {
    throw new InvalidRequestError('secret: the part after whsec_ must be base64');
  }
  const key = Buffer.from(body, 'base64');
  if (key.length < 24 || key.length > 64) {
    throw new InvalidRequestError(`secret must hold 24 to 64 bytes of key; it holds ${key.length}`);
  }
  return key;
}

/** The headers of one signed request. `timestamp` in Unix seconds. */
export function signedHeaders(key: Buffer, id: string, timestamp: number, body: string): Record<string, string> {
  const signature = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest('base64');
  return {
    'content-type': 'application/json',
    'webhook-id': id,
    'webhook-timestamp': String(timestamp),
    'webhook-signature': `v1,${signature}`,
  };
}
