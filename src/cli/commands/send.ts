/** `ferry send QUEUE [JSON] [--file F.ndjson]`: one message, or one per line of a file. */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { Command } from 'commander';
import type { BatchMessage, Ferry, SendOptions } from '../../core/types.ts';
import { action, parseIntOption, parseJson, UsageError, withConnection, withFerry } from '../context.ts';
import { printJson, println, progressBar } from '../output.ts';

const collect = (value: string, previous: string[]) => [...previous, value];

/** Messages per sendBatch when sending a file: one transaction each. */
const CHUNK = 200;

interface SendFlags {
  file?: string;
  delay?: string;
  priority?: string;
  key?: string;
  dedupeId?: string;
  maxAttempts?: string;
  lease?: string;
  timeout?: string;
  header?: string[];
  wait?: string | true;
  json?: boolean;
}

function sendOptions(flags: SendFlags): SendOptions {
  const options: SendOptions = {};
  if (flags.delay !== undefined) options.delay = flags.delay;
  if (flags.priority !== undefined) {
    const n = Number(flags.priority);
    if (!Number.isInteger(n)) throw new UsageError(`--priority must be an integer, got ${flags.priority}`);
    options.priority = n;
  }
  if (flags.key !== undefined) options.key = flags.key;
  if (flags.dedupeId !== undefined) options.dedupeId = flags.dedupeId;
  if (flags.maxAttempts !== undefined) options.maxAttempts = parseIntOption(flags.maxAttempts, '--max-attempts', 1);
  if (flags.lease !== undefined) options.lease = flags.lease;
  if (flags.timeout !== undefined) options.timeout = flags.timeout;
  if (flags.header && flags.header.length > 0) {
    options.headers = {};
    for (const pair of flags.header) {
      const at = pair.indexOf('=');
      if (at <= 0) throw new UsageError(`--header must be NAME=VALUE, got ${JSON.stringify(pair)}`);
      options.headers[pair.slice(0, at)] = pair.slice(at + 1);
    }
  }
  return options;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Yields [line number, payload] for each non-blank line; a line that is not JSON, or a file that cannot be
 * read (missing, a directory, not allowed), is a usage error, as for `flow`.
 */
async function* ndjson(path: string): AsyncGenerator<[number, unknown]> {
  const input = path === '-' ? process.stdin : createReadStream(path, { encoding: 'utf8' });
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  let n = 0;
  let line: string;
  const iterator = lines[Symbol.asyncIterator]();
  try {
    for (;;) {
      try {
        const next = await iterator.next();
        if (next.done) return;
        line = next.value;
      } catch (error) {
        throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
      }
      n++;
      if (line.trim() === '') continue;
      yield [n, parseJson(line, `line ${n} of ${path}`)];
    }
  } finally {
    lines.close();
  }
}

/**
 * Sends a file. A real file is read twice: first to check every line is JSON and to count them (so a bad
 * line sends nothing, and the progress bar knows its total), then to send in chunks.
 */
async function sendFile(ferry: Ferry, queue: string, path: string, options: SendOptions, json: boolean) {
  let total: number | null = null;
  if (path !== '-') {
    total = 0;
    for await (const _ of ndjson(path)) total++;
  }
  const showBar = !json && process.stderr.isTTY === true;
  const startedAt = performance.now();
  let sent = 0;
  let deduplicated = 0;
  let lastDraw = 0;
  let chunk: BatchMessage[] = [];
  const flush = async () => {
    if (chunk.length === 0) return;
    const results = await ferry.sendBatch(queue, chunk);
    sent += results.length;
    deduplicated += results.filter((r) => r.deduplicated).length;
    chunk = [];
    if (showBar && performance.now() - lastDraw > 100) {
      lastDraw = performance.now();
      process.stderr.write(progressBar(sent, total, startedAt));
    }
  };
  for await (const [, payload] of ndjson(path)) {
    // A dedupeId shared by every line would collapse the file into one message: only per-line ids make sense.
    chunk.push({ ...options, payload });
    if (chunk.length >= CHUNK) await flush();
  }
  await flush();
  if (showBar) process.stderr.write(`${progressBar(sent, total, startedAt)}\n`);
  const seconds = (performance.now() - startedAt) / 1000;
  const summary = { queue, sent, deduplicated, seconds: Math.round(seconds * 1000) / 1000 };
  if (json) printJson(summary);
  else {
    const rate = seconds > 0 ? Math.round(sent / seconds) : sent;
    const dup = deduplicated > 0 ? `, ${deduplicated} deduplicated` : '';
    println(`sent ${sent} messages to ${queue} in ${seconds.toFixed(2)}s (${rate}/s${dup})`);
  }
}

export const sendCommand = withConnection(
  new Command('send')
    .description('send one message (JSON argument, or - to read it from stdin), or one per line of an NDJSON file')
    .argument('<queue>', 'queue name')
    .argument('[json]', 'the payload as JSON, e.g. \'{"hello":1}\'; - reads it from stdin')
    .option('-f, --file <path>', 'send one message per line of this NDJSON file (- for stdin)')
    .option('--delay <duration>', 'do not deliver before this long, e.g. 10s')
    .option('--priority <n>', 'higher is delivered first (default 0)')
    .option('--key <key>', 'ordering key: messages sharing it are delivered one at a time')
    .option('--dedupe-id <id>', 'a second send with this id creates nothing')
    .option('--max-attempts <n>', 'attempts before the message is dead')
    .option('--lease <duration>', 'lease of each delivery, e.g. 1m')
    .option('--timeout <duration>', 'longest one attempt may run, from its delivery, e.g. 5m')
    .option('--header <name=value>', 'a header that travels with the message (repeatable)', collect, [])
    .option('--wait [duration]', 'wait for the result and print it (optionally at most this long)'),
).action(
  action(async (queue: string, text: string | undefined, flags: SendFlags) => {
    const json = Boolean(flags.json);
    const options = sendOptions(flags);
    if (flags.file !== undefined) {
      if (text !== undefined) throw new UsageError('give either a JSON payload or --file, not both');
      if (flags.wait !== undefined) throw new UsageError('--wait works with one message, not with --file');
      if (options.dedupeId !== undefined) throw new UsageError('--dedupe-id would make every line the same message');
      await withFerry({ ...flags, create: true }, (ferry) =>
        sendFile(ferry, queue, flags.file as string, options, json),
      );
      return;
    }
    if (text === undefined) throw new UsageError('give a JSON payload, - to read it from stdin, or --file F.ndjson');
    const payload = parseJson(text === '-' ? await readStdin() : text, 'the payload');
    await withFerry({ ...flags, create: true }, async (ferry) => {
      const sent = await ferry.send(queue, payload, options);
      if (flags.wait === undefined) {
        if (json) printJson({ id: sent.id, queue: sent.queue, deduplicated: sent.deduplicated });
        else println(sent.deduplicated ? `${sent.id} (deduplicated: already sent)` : sent.id);
        return;
      }
      const result = await sent.result(flags.wait === true ? {} : { timeout: flags.wait });
      if (json) printJson({ id: sent.id, queue: sent.queue, deduplicated: sent.deduplicated, result });
      else println(JSON.stringify(result));
    });
  }),
);
