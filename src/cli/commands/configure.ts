/** `ferry configure QUEUE [settings]`: changes a queue's defaults and prints its whole configuration. */
import { Command } from 'commander';
import type { QueueConfig, QueueSettings } from '../../core/types.ts';
import { action, parseIntOption, withConnection, withFerry } from '../context.ts';
import { printJson, println, table } from '../output.ts';

interface ConfigureFlags {
  maxAttempts?: string;
  lease?: string;
  retention?: string;
  concurrency?: string;
  timeout?: string;
  deadLetter?: string;
  json?: boolean;
}

/** `none` clears a setting that may be absent (concurrency, timeout, deadLetter). */
const orNull = (text: string): string | null => (text === 'none' ? null : text);

function configOf(flags: ConfigureFlags): QueueConfig {
  const config: QueueConfig = {};
  if (flags.maxAttempts !== undefined) config.maxAttempts = parseIntOption(flags.maxAttempts, '--max-attempts', 1);
  if (flags.lease !== undefined) config.lease = flags.lease;
  if (flags.retention !== undefined) config.retention = flags.retention;
  if (flags.concurrency !== undefined) {
    config.concurrency = flags.concurrency === 'none' ? null : parseIntOption(flags.concurrency, '--concurrency', 1);
  }
  if (flags.timeout !== undefined) config.timeout = orNull(flags.timeout);
  if (flags.deadLetter !== undefined) config.deadLetter = orNull(flags.deadLetter);
  return config;
}

function settingsTable(queue: string, s: QueueSettings): string {
  const ms = (v: number | null) => (v === null ? 'none' : `${v}ms`);
  return table(
    ['queue', 'setting', 'value'],
    [
      [queue, 'maxAttempts', s.maxAttempts],
      [queue, 'backoff', JSON.stringify(s.backoff)],
      [queue, 'lease', ms(s.lease)],
      [queue, 'retention', ms(s.retention)],
      [queue, 'concurrency', s.concurrency ?? 'none'],
      [queue, 'rateLimit', s.rateLimit === null ? 'none' : `${s.rateLimit.max} per ${s.rateLimit.per}ms`],
      [queue, 'timeout', ms(s.timeout)],
      [queue, 'deadLetter', s.deadLetter ?? 'none'],
      [queue, 'paused', String(s.paused)],
    ],
  );
}

export const configureCommand = withConnection(
  new Command('configure')
    .description('change a queue’s defaults (none given: show them) and print its configuration')
    .argument('<queue>', 'queue name')
    .option('--max-attempts <n>', 'attempts before a message is dead')
    .option('--lease <duration>', 'lease of each delivery, e.g. 1m')
    .option('--retention <duration>', 'how long finished messages are kept, e.g. 7d')
    .option('--concurrency <n>', 'most messages active at once across consumers (none: no limit)')
    .option('--timeout <duration>', 'longest one attempt may run, from its delivery (none: no timeout)')
    .option('--dead-letter <queue>', 'queue that gets a copy of each message dead here (none: no copy)'),
).action(
  action(async (queue: string, flags: ConfigureFlags) => {
    await withFerry({ ...flags, create: true }, async (ferry) => {
      const config = configOf(flags);
      const settings = await ferry.configure(queue, Object.keys(config).length > 0 ? config : undefined);
      if (flags.json) printJson({ queue, ...settings });
      else println(settingsTable(queue, settings));
    });
  }),
);
