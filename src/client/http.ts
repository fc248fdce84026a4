/**
 * One JSON request to a Ferry server, with the answer's problem (RFC 9457) turned back into the same error
 * classes the embedded Ferry throws. Uses `fetch`, so it runs in browsers, Deno, Bun and Node; in Node, when
 * no `fetch` was given, JSON requests go through undici's `request` instead, which costs the client about a
 * fifth of the CPU per request (`npx tsx bench/client-transport.ts`). Streams (SSE) stay on `fetch`.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { codeOfStatus, errorFromCode, FerryError, InvalidRequestError, UnavailableError } from '../core/errors.ts';

export type Fetch = typeof globalThis.fetch;

export interface RequestOptions {
  body?: unknown;
  /** The body as JSON text already (instead of `body`). */
  json?: string;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
}

export interface Answer<T> {
  status: number;
  body: T;
}

/** What the client reads of undici's `request` (a subset of its types, so browsers never load undici). */
type NodeRequest = (
  url: string,
  options: { method: string; headers: Record<string, string>; body?: string; signal?: AbortSignal },
) => Promise<{
  statusCode: number;
  headers: Record<string, string | string[] | undefined>;
  body: { text(): Promise<string> };
}>;

let nodeRequest: Promise<NodeRequest | null> | undefined;

/** undici's `request` in Node, else null. The specifier is a variable so that bundlers leave it alone. */
function loadNodeRequest(): Promise<NodeRequest | null> {
  nodeRequest ??= (async () => {
    if (typeof process === 'undefined' || typeof process.versions?.node !== 'string') return null;
    try {
      const name = 'undici';
      const mod = (await import(/* @vite-ignore */ name)) as { request?: NodeRequest };
      return typeof mod.request === 'function' ? mod.request : null;
    } catch {
      return null;
    }
  })();
  return nodeRequest;
}

/** A request body as JSON text; a value JSON cannot hold (a BigInt, a cycle) is the caller's error. */
export function jsonBody(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch (error) {
    throw new InvalidRequestError(`the request must be JSON-serializable: ${(error as Error).message}`);
  }
}

export class Transport {
  readonly base: string;
  readonly #token: string | undefined;
  readonly #fetch: Fetch;
  /** A fetch given by the caller is always used; otherwise Node's undici `request` where there is one. */
  readonly #mayUseNode: boolean;

  constructor(url: string, token: string | undefined, fetchImpl: Fetch | undefined) {
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new FerryError('invalid_request', `not a URL: ${JSON.stringify(url)}`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
      throw new FerryError('invalid_request', `the server URL must be http: or https:, got ${parsed.protocol}`);
    }
    this.base = parsed.href.replace(/\/+$/, '');
    this.#token = token;
    const f = fetchImpl ?? globalThis.fetch;
    if (typeof f !== 'function') throw new FerryError('invalid_request', 'no fetch() here: pass options.fetch');
    // Bound to the global: browsers refuse `fetch` called as a method of another object.
    this.#fetch = fetchImpl ?? ((input, init) => globalThis.fetch(input, init));
    this.#mayUseNode = fetchImpl === undefined;
  }

  url(path: string, query?: RequestOptions['query']): string {
    let text = this.base + path;
    if (query) {
      const params = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined) params.set(k, String(v));
      const q = params.toString();
      if (q) text += `?${q}`;
    }
    return text;
  }

  headers(extra?: Record<string, string>): Record<string, string> {
    const h: Record<string, string> = { accept: 'application/json', ...extra };
    if (this.#token) h.authorization = `Bearer ${this.#token}`;
    return h;
  }

  /** The request's headers and JSON body. */
  #prepare(options: RequestOptions): { headers: Record<string, string>; body: string | undefined } {
    const headers = this.headers(options.headers);
    // The server continues the caller's trace (W3C traceparent, or whatever propagator is registered).
    const active = context.active();
    if (trace.getSpan(active) !== undefined) propagation.inject(active, headers);
    let body: string | undefined;
    if (options.json !== undefined || options.body !== undefined) {
      headers['content-type'] = 'application/json';
      body = options.json ?? jsonBody(options.body);
    }
    return { headers, body };
  }

  /** A failure to reach the server: an abort stays the signal's reason (as fetch rejects), else unavailable. */
  #unreachable(error: unknown, signal: AbortSignal | undefined): unknown {
    if (signal?.aborted) return signal.reason ?? error;
    // fetch says only "fetch failed"; its cause says why (connect ECONNREFUSED 127.0.0.1:7070, ENOTFOUND…).
    const cause = (error as { cause?: { message?: unknown } }).cause;
    const why = typeof cause?.message === 'string' && cause.message !== '' ? cause.message : (error as Error).message;
    return new UnavailableError(`cannot reach the Ferry server at ${this.base}: ${why}`, { cause: error });
  }

  /** Sends the request; a network failure becomes {@link UnavailableError}, an abort stays an AbortError. */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const { headers, body } = this.#prepare(options);
    try {
      return await this.#fetch(this.url(path, options.query), {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      throw this.#unreachable(error, options.signal);
    }
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<Answer<T>> {
    const node = this.#mayUseNode ? await loadNodeRequest() : null;
    if (node === null) {
      const response = await this.raw(method, path, options);
      if (!response.ok) throw await toError(response);
      const text = await response.text();
      return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T };
    }
    const { headers, body } = this.#prepare(options);
    let text: string;
    let status: number;
    let answerHeaders: Record<string, string | string[] | undefined>;
    try {
      const answer = await node(this.url(path, options.query), {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
      status = answer.statusCode;
      answerHeaders = answer.headers;
      text = await answer.body.text();
    } catch (error) {
      throw this.#unreachable(error, options.signal);
    }
    if (status < 200 || status >= 300) {
      const retryAfter = answerHeaders['retry-after'];
      throw problemError(status, '', text, Array.isArray(retryAfter) ? retryAfter[0] : retryAfter);
    }
    return { status, body: (text ? JSON.parse(text) : undefined) as T };
  }
}

/** Rebuilds the error class from a problem answer. */
export async function toError(response: Response): Promise<FerryError> {
  let text = '';
  try {
    text = await response.text();
  } catch {
    // An answer cut short: the status alone decides.
  }
  return problemError(response.status, response.statusText, text, response.headers.get('retry-after'));
}

/** The error class of a problem document (or of the status alone, when the body is not one). */
function problemError(
  status: number,
  statusText: string,
  text: string,
  retryAfter: string | null | undefined,
): FerryError {
  let code = '';
  let detail = `HTTP ${status}${statusText ? ` ${statusText}` : ''}`;
  try {
    const problem = JSON.parse(text) as { type?: unknown; detail?: unknown };
    if (typeof problem.type === 'string') code = problem.type;
    if (typeof problem.detail === 'string') detail = problem.detail;
  } catch {
    // Not a problem document (a proxy's error page): the status alone decides.
  }
  if (!code) code = codeOfStatus(status);
  const seconds = Number(retryAfter);
  return errorFromCode(code, detail, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined);
}
