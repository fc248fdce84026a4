/**
 * Access tokens: parsing `--token` / `FERRY_TOKENS` and recognizing a presented token in constant time.
 *
 * Format: entries separated by whitespace or `;`, each `TOKEN[:queues=A,B][:scopes=S,S][:sqs=AKID]`.
 *   - TOKEN: at least 16 characters, none of `:`, `;`, `,` or whitespace.
 *   - queues: names the token may touch (queues, and topics for publish/subscribe); a trailing `*` matches
 *     a prefix (`billing.*`). Default: every queue.
 *   - scopes: any of `send`, `receive`, `admin`, `metrics`. Default: send, receive and admin. `metrics` lets a
 *     Prometheus scraper read `GET /metrics` and nothing else; `admin` includes it.
 *   - sqs: an access key id for the SQS endpoint (SPEC §7): requests signed with AWS Signature V4 using this
 *     id, and the token as the secret key, get this token's grant.
 * Example: `FERRY_TOKENS="s3cr3t-producer-token:queues=emails:scopes=send  0p3n-worker-token:scopes=receive"`.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { InvalidRequestError } from '../core/errors.ts';
import { QUEUE_NAME } from '../core/validate.ts';

export type Scope = 'send' | 'receive' | 'admin' | 'metrics';
/** The scopes that reach queues, and a token's scopes when its entry names none. */
export const SCOPES: readonly Scope[] = ['send', 'receive', 'admin'];
/** Every scope an entry may name. */
const NAMED_SCOPES: readonly Scope[] = [...SCOPES, 'metrics'];
const MIN_TOKEN_LENGTH = 16;

/** What a request may do. */
export interface Grant {
  /** A short fingerprint of the token (never the token): rate-limit key and log field. */
  readonly id: string;
  readonly scopes: readonly Scope[];
  /** Queue patterns; null: every queue. */
  readonly queues: readonly string[] | null;
}

/** The grant of a server with no tokens: everything is allowed. */
export const OPEN_GRANT: Grant = { id: 'anonymous', scopes: SCOPES, queues: null };

interface Entry {
  hash: Buffer;
  grant: Grant;
  /** Kept only for entries with an SQS access key: Signature V4 needs the secret itself, not its hash. */
  sqs: { accessKeyId: string; secret: string } | null;
}

/** What Signature V4 verification needs of a token. */
export interface AccessKey {
  secret: string;
  grant: Grant;
}

const ACCESS_KEY_ID = /^[A-Za-z0-9]{4,128}$/;

const sha256 = (text: string): Buffer => createHash('sha256').update(text).digest();

function parseEntry(text: string): Entry {
  const [token = '', ...options] = text.split(':');
  if (token.length < MIN_TOKEN_LENGTH || /[\s,;]/.test(token)) {
    throw new InvalidRequestError(
      `a token must be at least ${MIN_TOKEN_LENGTH} characters without ':', ';', ',' or spaces; got one of ${token.length} characters`,
    );
  }
  let scopes: Scope[] = [...SCOPES];
  let queues: string[] | null = null;
  let accessKeyId: string | null = null;
  for (const option of options) {
    const [name, value = ''] = option.split('=', 2) as [string, string?];
    const list = value.split(',').filter(Boolean);
    if (name === 'scopes') {
      for (const s of list) {
        if (!NAMED_SCOPES.includes(s as Scope))
          throw new InvalidRequestError(`unknown token scope ${JSON.stringify(s)}; use ${NAMED_SCOPES.join(', ')}`);
      }
      scopes = list as Scope[];
    } else if (name === 'queues') {
      for (const q of list) {
        const name = q.endsWith('*') ? q.slice(0, -1) : q;
        if (name !== '' && !QUEUE_NAME.test(name))
          throw new InvalidRequestError(`invalid queue name in token: ${JSON.stringify(q)}`);
      }
      queues = list;
    } else if (name === 'sqs') {
      if (!ACCESS_KEY_ID.test(value)) {
        throw new InvalidRequestError(
          `sqs= takes an access key id of 4 to 128 letters and digits; got ${JSON.stringify(value)}`,
        );
      }
      accessKeyId = value;
    } else {
      throw new InvalidRequestError(`unknown token option ${JSON.stringify(name)}; use queues=…, scopes=… or sqs=…`);
    }
  }
  if (scopes.length === 0) throw new InvalidRequestError('a token needs at least one scope');
  const hash = sha256(token);
  return {
    hash,
    grant: { id: hash.toString('hex').slice(0, 12), scopes, queues },
    sqs: accessKeyId === null ? null : { accessKeyId, secret: token },
  };
}

/** Parses token entries; throws a clear error on a malformed one. */
export function parseTokens(specs: readonly string[]): Entry[] {
  return specs
    .flatMap((s) => s.split(/[\s;]+/))
    .filter(Boolean)
    .map(parseEntry);
}

export function queueAllowed(grant: Grant, queue: string): boolean {
  if (grant.queues === null) return true;
  return grant.queues.some((p) => (p.endsWith('*') ? queue.startsWith(p.slice(0, -1)) : p === queue));
}

export class TokenSet {
  readonly #entries: Entry[];
  readonly #accessKeys = new Map<string, AccessKey>();
  constructor(specs: readonly string[]) {
    this.#entries = parseTokens(specs);
    for (const entry of this.#entries) {
      if (!entry.sqs) continue;
      if (this.#accessKeys.has(entry.sqs.accessKeyId)) {
        throw new InvalidRequestError(`the SQS access key id ${entry.sqs.accessKeyId} is given to two tokens`);
      }
      this.#accessKeys.set(entry.sqs.accessKeyId, { secret: entry.sqs.secret, grant: entry.grant });
    }
  }

  /**
   * The token holding an SQS access key id, or null. The id is public (it travels in every request), so a
   * map lookup leaks nothing; the secret is then proven by the signature.
   */
  accessKey(accessKeyId: string): AccessKey | null {
    return this.#accessKeys.get(accessKeyId) ?? null;
  }

  /** True when tokens are configured, so every /v1 request needs one. */
  get required(): boolean {
    return this.#entries.length > 0;
  }

  /**
   * The grant of a presented token, or null. Compares hashes so that lengths never differ, and visits every
   * entry whether or not one matched, so the time taken says nothing about which or how much matched.
   */
  find(token: string): Grant | null {
    const hash = sha256(token);
    let found: Grant | null = null;
    for (const entry of this.#entries) {
      if (timingSafeEqual(entry.hash, hash) && found === null) found = entry.grant;
    }
    return found;
  }
}
