/**
 * Short-lived tokens for `GET /v1/events?token=…`: browsers' EventSource cannot send an Authorization header,
 * and a long-lived token in a URL ends up in logs and histories. A stream token is
 * `base64url(JSON claims).base64url(HMAC-SHA256(claims))`, valid only for the events stream, until `exp`,
 * with at most the scopes and queues of the token that asked for it.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Grant, Scope } from './tokens.ts';

interface Claims {
  /** The issuing token's fingerprint. */
  sub: string;
  scopes: Scope[];
  queues: string[] | null;
  /** Events of this queue only, when set. */
  queue: string | null;
  /** Expiry, epoch ms. */
  exp: number;
}

export interface StreamGrant {
  grant: Grant;
  queue: string | null;
}

export class StreamTokens {
  readonly #key: Buffer;
  constructor(secret?: string) {
    // A random key per process: tokens die with it, which their minutes-long life makes harmless. Several
    // servers behind one balancer share `streamSecret` instead.
    this.#key = secret ? Buffer.from(secret) : randomBytes(32);
  }

  #sign(body: string): Buffer {
    return createHmac('sha256', this.#key).update(body).digest();
  }

  issue(grant: Grant, queue: string | null, ttlMs: number, now = Date.now()): { token: string; expiresAt: string } {
    const claims: Claims = {
      sub: grant.id,
      scopes: [...grant.scopes],
      queues: grant.queues ? [...grant.queues] : null,
      queue,
      exp: now + ttlMs,
    };
    const body = Buffer.from(JSON.stringify(claims)).toString('base64url');
    return {
      token: `${body}.${this.#sign(body).toString('base64url')}`,
      expiresAt: new Date(claims.exp).toISOString(),
    };
  }

  /** The grant of a valid, unexpired stream token, or null. */
  verify(token: string, now = Date.now()): StreamGrant | null {
    const dot = token.indexOf('.');
    if (dot <= 0) return null;
    const body = token.slice(0, dot);
    const given = Buffer.from(token.slice(dot + 1), 'base64url');
    const expected = this.#sign(body);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return null;
    let claims: Claims;
    try {
      claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as Claims;
    } catch {
      return null;
    }
    if (typeof claims.exp !== 'number' || claims.exp <= now) return null;
    return { grant: { id: `${claims.sub}~stream`, scopes: claims.scopes, queues: claims.queues }, queue: claims.queue };
  }
}
