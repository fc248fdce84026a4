/** The server's console log: pretty on a terminal, JSON elsewhere, JSON when pino-pretty is missing. */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import { open } from '../../src/index.ts';
import { consoleLogger, type LogFormat } from '../../src/server/console-log.ts';
import { createServer } from '../../src/server/index.ts';

/** Serves one refused request with the logger `consoleLogger` builds, and returns what it wrote. */
async function logOfOneRequest(format: LogFormat, isTTY: boolean, withPretty = true): Promise<string> {
  let text = '';
  const destination = Object.assign(
    new Writable({
      write(chunk: Buffer, _encoding, done) {
        text += chunk.toString();
        done();
      },
    }),
    { isTTY },
  );
  const logger = await consoleLogger('info', format, destination, withPretty ? undefined : async () => null);
  const ferry = await open('memory:');
  const app = await createServer(ferry, { logger });
  try {
    await app.inject({ method: 'GET', url: '/v1/nothing' });
  } finally {
    await app.close();
    await ferry.close();
  }
  return text;
}

function isJsonLines(text: string): boolean {
  try {
    return text
      .trim()
      .split('\n')
      .every((line) => typeof JSON.parse(line) === 'object');
  } catch {
    return false;
  }
}

describe('console log', () => {
  it('is pretty on a terminal', async () => {
    const text = await logOfOneRequest('auto', true);
    assert.match(text, /request refused/);
    assert.ok(!text.trimStart().startsWith('{'), text);
    assert.match(text, /INFO/);
  });

  it('is JSON lines when not on a terminal', async () => {
    const text = await logOfOneRequest('auto', false);
    assert.ok(isJsonLines(text), text);
    assert.match(text, /"msg":"request refused"/);
  });

  it('can be forced either way', async () => {
    assert.ok(!isJsonLines(await logOfOneRequest('pretty', false)));
    assert.ok(isJsonLines(await logOfOneRequest('json', true)));
  });

  it('stays JSON where pino-pretty is not installed', async () => {
    const text = await logOfOneRequest('pretty', true, false);
    assert.ok(isJsonLines(text), text);
  });
});
