/**
 * A Server-Sent Events parser over a fetch body (the WHATWG event-stream format): fetch streaming, unlike
 * EventSource, can send an Authorization header and be aborted.
 */

export interface SseMessage {
  id: string | undefined;
  event: string;
  data: string;
}

/** Yields each dispatched message of an event stream; comments and `retry:` lines are skipped. */
export async function* readSse(body: ReadableStream<Uint8Array>): AsyncGenerator<SseMessage> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  let id: string | undefined;
  let event = '';
  let data: string[] = [];
  let sawId = false;
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let end = buffer.search(/\r\n|\r|\n/);
      while (end >= 0) {
        // A '\r' ending the chunk may be the first half of '\r\n': wait for the next chunk.
        if (buffer[end] === '\r' && end === buffer.length - 1) break;
        const line = buffer.slice(0, end);
        buffer = buffer.slice(buffer[end] === '\r' && buffer[end + 1] === '\n' ? end + 2 : end + 1);
        if (line === '') {
          // A block with an id and no data dispatches nothing in EventSource but moves its last event id: it is
          // yielded (data '') so readers can track their position the same way.
          if (data.length > 0 || sawId) yield { id, event: event || 'message', data: data.join('\n') };
          sawId = false;
          event = '';
          data = [];
        } else if (!line.startsWith(':')) {
          const colon = line.indexOf(':');
          const field = colon < 0 ? line : line.slice(0, colon);
          let value = colon < 0 ? '' : line.slice(colon + 1);
          if (value.startsWith(' ')) value = value.slice(1);
          if (field === 'data') data.push(value);
          else if (field === 'event') event = value;
          else if (field === 'id' && !value.includes('\0')) {
            id = value;
            sawId = true;
          }
        }
        end = buffer.search(/\r\n|\r|\n/);
      }
    }
  } finally {
    reader.releaseLock();
  }
}
