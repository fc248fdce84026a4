// The dashboard's only way to the data: the public HTTP API, with the token kept in sessionStorage.

const TOKEN_KEY = 'ferry.token';

export class ApiError extends Error {
  constructor(status, type, message) {
    super(message);
    this.status = status;
    this.type = type;
  }
}

export const auth = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  /** Called when the server answers 401: the app shows the sign-in form. */
  onUnauthorized: () => {},
};

function headers(extra = {}) {
  const all = { accept: 'application/json', ...extra };
  if (auth.token) all.authorization = `Bearer ${auth.token}`;
  return all;
}

/** Calls the API; answers the parsed JSON body, or throws an ApiError carrying the problem's type and detail. */
export async function api(method, path, body) {
  const init = { method, headers: headers(body === undefined ? {} : { 'content-type': 'application/json' }) };
  if (body !== undefined) init.body = JSON.stringify(body);
  const response = await fetch(path, init);
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = { detail: text };
  }
  if (!response.ok) {
    if (response.status === 401) auth.onUnauthorized();
    throw new ApiError(
      response.status,
      data?.type ?? 'error',
      data?.detail ?? data?.title ?? `HTTP ${response.status}`,
    );
  }
  return data;
}

export const q = encodeURIComponent;

/**
 * Follows GET /v1/events. It reads the stream with fetch rather than EventSource because EventSource cannot
 * send an Authorization header, and a long-lived token in a URL ends up in logs. Reconnects with
 * Last-Event-ID after a drop, so nothing is missed. Answers a function that stops it.
 */
export function follow({ queue, after, onEvent, onPosition = () => {}, onState = () => {} }) {
  const controller = new AbortController();
  let last = after;
  let stopped = false;
  const run = async () => {
    let delay = 500;
    while (!stopped) {
      try {
        const extra = { accept: 'text/event-stream' };
        if (last !== undefined && last !== null) extra['last-event-id'] = String(last);
        const url = queue ? `/v1/events?queue=${q(queue)}` : '/v1/events';
        const response = await fetch(url, { headers: headers(extra), signal: controller.signal });
        if (response.status === 401) {
          auth.onUnauthorized();
          onState('signed out');
          return;
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        onState('live');
        delay = 500;
        await readEvents(
          response.body,
          (event) => {
            last = event.seq;
            onEvent(event);
          },
          (seq) => {
            // The stream opens with its position: resuming from it misses nothing even before any event.
            last = seq;
            onPosition(seq);
          },
        );
      } catch {
        if (stopped) return;
        onState('reconnecting…');
      }
      if (stopped) return;
      onState('reconnecting…');
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 10_000);
    }
  };
  void run();
  return () => {
    stopped = true;
    controller.abort();
  };
}

/**
 * Parses text/event-stream: blocks separated by a blank line; `data:` lines hold the event's JSON. A block
 * with an `id:` and no data is a position (the seq the stream starts after).
 */
async function readEvents(body, onEvent, onPosition) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value.replace(/\r\n?/g, '\n');
    let end = buffer.indexOf('\n\n');
    while (end >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block
        .split('\n')
        .filter((line) => line.startsWith('data:'))
        .map((line) => line.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) {
        try {
          onEvent(JSON.parse(data));
        } catch {
          // A malformed block is skipped; the next one is independent.
        }
      } else {
        const id = block
          .split('\n')
          .find((line) => line.startsWith('id:'))
          ?.slice(3)
          .trim();
        if (id && /^\d+$/.test(id)) onPosition(Number(id));
      }
      end = buffer.indexOf('\n\n');
    }
  }
}
