/** `ferry configure QUEUE [flags]`: reads a queue's settings, or changes those given. */
import { Command } from 'commander';
import type { QueueConfig, QueueSettings } from '../../core/types.ts';
import { action, UsageError, withConnection, withFerry } from '../context.ts';
import { printJson, println, table } from '../output.ts';

interface Flags {
  maxAttempts?: string;
  lease?: string;
  retention?: string;
  concurrency?: string;
  rateLimit?: string;
  keyConcurrency?: string;
  keyRateLimit?: string;
  timeout?: string;
  deadLetter?: string;
  json?: boolean;
}

/** A duration flag: whole milliseconds as a number, else the text (`30s`), which configure checks. */
const duration = (text: string): number | string => (/^\d+$/.test(text) ? Number(text) : text);

/** A whole number flag; configure checks its range. */
function whole(text: string, flag: string): number {
  if (!/^-?\d+$/.test(text)) throw new UsageError(`${flag} must be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

/** `MAX/PER` (`10/1s`) as a window limit; `none` removes it. */
function windowLimit(text: string, flag: string): { max: number; per: number | string } | null {
  if (text === 'none') return null;
  const match = /^(\d+)\/(\S+)$/.exec(text);
  if (!match) throw new UsageError(`${flag} must be MAX/PER, like 10/1s, or none; got ${JSON.stringify(text)}`);
  return { max: Number(match[1]), per: duration(match[2] as string) };
}

/** The patch the flags ask for (empty: only read the settings). */
function patchOf(flags: Flags): QueueConfig {
  const patch: QueueConfig = {};
  if (flags.maxAttempts !== undefined) patch.maxAttempts = whole(flags.maxAttempts, '--max-attempts');
  if (flags.lease !== undefined) patch.lease = duration(flags.lease);
  if (flags.retention !== undefined) patch.retention = duration(flags.retention);
  if (flags.concurrency !== undefined) {
    patch.concurrency = flags.concurrency === 'none' ? null : whole(flags.concurrency, '--concurrency');
  }
  if (flags.rateLimit !== undefined) patch.rateLimit = windowLimit(flags.rateLimit, '--rate-limit');
  if (flags.keyConcurrency !== undefined) patch.keyConcurrency = whole(flags.keyConcurrency, '--key-concurrency');
  if (flags.keyRateLimit !== undefined) patch.keyRateLimit = windowLimit(flags.keyRateLimit, '--key-rate-limit');
  if (flags.timeout !== undefined) patch.timeout = flags.timeout === 'none' ? null : duration(flags.timeout);
  if (flags.deadLetter !== undefined) patch.deadLetter = flags.deadLetter === 'none' ? null : flags.deadLetter;
  return patch;
}

const window = (limit: { max: number; per: number } | null) => (limit ? `${limit.max} per ${limit.per} ms` : 'none');

function settingsTable(queue: string, s: QueueSettings): string {
  const backoff =
    s.backoff.type === 'fixed' ? `fixed ${s.backoff.delay} ms` : `exponential ${s.backoff.delay}–${s.backoff.max} ms`;
  return table(
    ['setting', queue],
    [
      ['maxAttempts', s.maxAttempts],
      ['backoff', backoff],
      ['lease', `${s.lease} ms`],
      ['retention', `${s.retention} ms`],
      ['concurrency', s.concurrency ?? 'none'],
      ['rateLimit', window(s.rateLimit)],
      ['keyConcurrency', s.keyConcurrency],
      ['keyRateLimit', window(s.keyRateLimit)],
      ['timeout', s.timeout === null ? 'none' : `${s.timeout} ms`],
      ['deadLetter', s.deadLetter ?? 'none'],
      ['paused', s.paused ? 'yes' : 'no'],
    ],
  );
}

export const configureCommand = withConnection(
  new Command('configure')
    .description('show a queue’s settings, or change those given (durations: 250ms, 30s, 5m, 2h, 7d)')
    .argument('<queue>', 'queue name')
    .option('--max-attempts <n>', 'deliveries before a message is dead')
    .option('--lease <duration>', 'default lease of a delivery')
    .option('--retention <duration>', 'how long finished messages are kept')
    .option('--concurrency <n>', 'most messages active at once in the queue, or none')
    .option('--rate-limit <max/per>', 'most deliveries per window, e.g. 100/1s, or none')
    .option('--key-concurrency <n>', 'most messages of one ordering key active at once (default 1)')
    .option('--key-rate-limit <max/per>', 'most deliveries of one ordering key per window, e.g. 3/1s, or none')
    .option('--timeout <duration>', 'longest one attempt may run, from its delivery, or none')
    .option('--dead-letter <queue>', 'queue that gets a copy of each message that dies here, or none'),
).action(
  action(async (queue: string, flags: Flags) => {
    const patch = patchOf(flags);
    const change = Object.keys(patch).length > 0;
    await withFerry({ ...flags, create: change }, async (ferry) => {
      const settings = await ferry.configure(queue, change ? patch : undefined);
      if (flags.json) printJson(settings);
      else println(settingsTable(queue, settings));
    });
  }),
);
