/**
 * One JSON request to a Ferry server, with the answer's problem (RFC 9457) turned back into the same error
 * classes the embedded Ferry throws. Uses only `fetch`, so it runs in browsers, Deno, Bun and Node.
 */
import { context, propagation, trace } from '@opentelemetry/api';
import { codeOfStatus, errorFromCode, FerryError, InvalidRequestError, UnavailableError } from '../core/errors.ts';

export type Fetch = typeof globalThis.fetch;

export interface RequestOptions {
  body?: unknown;
  query?: Record<string, string | number | undefined>;
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
}

export interface Answer<T> {
  status: number;
  body: T;
  headers: Headers;
}

export class Transport {
  readonly base: string;
  readonly #token: string | undefined;
  readonly #fetch: Fetch;

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

  /** Sends the request; a network failure becomes {@link UnavailableError}, an abort stays an AbortError. */
  async raw(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers = this.headers(options.headers);
    // The server continues the caller's trace (W3C traceparent, or whatever propagator is registered).
    const active = context.active();
    if (trace.getSpan(active) !== undefined) propagation.inject(active, headers);
    let body: string | undefined;
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
      try {
        body = JSON.stringify(options.body);
      } catch (error) {
        throw new InvalidRequestError(`the request must be JSON-serializable: ${(error as Error).message}`);
      }
    }
    try {
      return await this.#fetch(this.url(path, options.query), {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(options.signal ? { signal: options.signal } : {}),
      });
    } catch (error) {
      if (options.signal?.aborted) throw error;
      // fetch says only "fetch failed"; its cause says why (connect ECONNREFUSED 127.0.0.1:7070, ENOTFOUND…).
      const cause = (error as { cause?: { message?: unknown } }).cause;
      const why = typeof cause?.message === 'string' && cause.message !== '' ? cause.message : (error as Error).message;
      throw new UnavailableError(`cannot reach the Ferry server at ${this.base}: ${why}`, { cause: error });
    }
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<Answer<T>> {
    const response = await this.raw(method, path, options);
    if (!response.ok) throw await toError(response);
    const text = await response.text();
    return { status: response.status, body: (text ? JSON.parse(text) : undefined) as T, headers: response.headers };
  }
}

/** Rebuilds the error class from a problem answer. */
export async function toError(response: Response): Promise<FerryError> {
  let code = '';
  let detail = `HTTP ${response.status} ${response.statusText}`;
  try {
    const problem = (await response.json()) as { type?: unknown; detail?: unknown };
    if (typeof problem.type === 'string') code = problem.type;
    if (typeof problem.detail === 'string') detail = problem.detail;
  } catch {
    // Not a problem document (a proxy's error page): the status alone decides.
  }
  if (!code) code = codeOfStatus(response.status);
  const seconds = Number(response.headers.get('retry-after'));
  return errorFromCode(code, detail, Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined);
}
