/**
 * One webhook request: a POST over an undici `Agent` whose connections resolve through the SSRF guard (unless
 * private addresses are allowed), bounded at 10 s from start to the end of the answer, redirects not
 * followed, the answer's body read and dropped (at most 64 KiB). undici is loaded at the first request: it
 * costs every `open()` tens of milliseconds (seconds on a loaded machine), and most processes never deliver.
 */
import type { Agent } from 'undici';
import { checkLiteral, guardedLookup } from './guard.ts';

/** A webhook that does not answer within this is a failed attempt. */
export const WEBHOOK_TIMEOUT = 10_000;

export interface PostResult {
  /** The HTTP status, or null when none came. */
  status: number | null;
  error: string | null;
}

export class WebhookClient {
  private undici: Promise<{ agent: Agent; request: typeof import('undici').request }> | undefined;

  constructor(private readonly allowPrivate: boolean) {}

  private load(): Promise<{ agent: Agent; request: typeof import('undici').request }> {
    this.undici ??= import('undici').then(({ Agent, request }) => ({
      agent: new Agent({
        connect: { timeout: WEBHOOK_TIMEOUT, ...(this.allowPrivate ? {} : { lookup: guardedLookup }) },
        headersTimeout: WEBHOOK_TIMEOUT,
        bodyTimeout: WEBHOOK_TIMEOUT,
      }),
      request,
    }));
    return this.undici;
  }

  /** POSTs `body`; never throws: a failure is an answer with its reason. */
  async post(url: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<PostResult> {
    const timeout = AbortSignal.timeout(WEBHOOK_TIMEOUT);
    try {
      const target = new URL(url);
      if (!this.allowPrivate) checkLiteral(target);
      const { agent, request } = await this.load();
      const answer = await request(target, {
        method: 'POST',
        headers,
        body,
        dispatcher: agent,
        signal: AbortSignal.any([signal, timeout]),
      });
      await answer.body.dump({ limit: 65_536 }).catch(() => {});
      const status = answer.statusCode;
      if (status >= 200 && status < 300) return { status, error: null };
      const redirect = status >= 300 && status < 400 ? ' (redirects are not followed)' : '';
      return { status, error: `HTTP ${status}${redirect}` };
    } catch (error) {
      if (timeout.aborted) return { status: null, error: `no answer within ${WEBHOOK_TIMEOUT / 1000} s` };
      if (signal.aborted) return { status: null, error: 'cut short: this process is closing' };
      return { status: null, error: describe(error) };
    }
  }

  async close(): Promise<void> {
    if (this.undici) await (await this.undici).agent.destroy();
  }
}

/** A network error as a short line: the innermost cause (undici wraps the socket's error). */
function describe(error: unknown): string {
  let e = error as { message?: string; code?: string; cause?: unknown } | undefined;
  while (e?.cause && typeof e.cause === 'object') e = e.cause as typeof e;
  const message = e?.message || String(error);
  return e?.code && !message.includes(e.code) ? `${e.code}: ${message}` : message;
}
