/** `ferry events`: follows the events stream like `tail -f`, until interrupted. */
import { Command } from 'commander';
import { EVENT_TYPES, type EventsOptions, type EventType } from '../../core/types.ts';
import { action, parseIntOption, UsageError, withConnection, withFerry } from '../context.ts';
import { eventLine, printJson, println } from '../output.ts';

interface EventsFlags {
  queue?: string;
  types?: string;
  after?: string;
  count?: string;
  json?: boolean;
}

export const eventsCommand = withConnection(
  new Command('events')
    .description('print events as they happen, like tail -f (Ctrl-C stops); --json prints one JSON event per line')
    .argument('[queue]', 'only this queue (or --queue)')
    .option('--queue <queue>', 'only this queue')
    .option('--types <types>', `only these types, comma-separated (${EVENT_TYPES.join(', ')})`)
    .option('--after <seq>', 'first replay the events after this seq, then follow')
    .option('--count <n>', 'stop after this many events'),
).action(
  action(async (queue: string | undefined, flags: EventsFlags) => {
    if (queue !== undefined && flags.queue !== undefined && queue !== flags.queue) {
      throw new UsageError(`two queues given, ${queue} and --queue ${flags.queue}: events follows one queue or all`);
    }
    const options: EventsOptions = {};
    const only = queue ?? flags.queue;
    if (only !== undefined) options.queue = only;
    if (flags.types !== undefined) {
      const types = flags.types.split(',').map((t) => t.trim());
      const unknown = types.find((t) => !EVENT_TYPES.includes(t as EventType));
      if (unknown !== undefined) {
        throw new UsageError(`unknown event type ${JSON.stringify(unknown)}; types are ${EVENT_TYPES.join(', ')}`);
      }
      options.types = types as EventType[];
    }
    if (flags.after !== undefined) options.after = parseIntOption(flags.after, '--after');
    const limit = flags.count === undefined ? Number.POSITIVE_INFINITY : parseIntOption(flags.count, '--count', 1);
    await withFerry(flags, async (ferry) => {
      const stream = ferry.events(options);
      const stop = () => stream.close();
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      try {
        let seen = 0;
        for await (const event of stream) {
          if (flags.json) printJson(event);
          else println(eventLine(event));
          if (++seen >= limit) break;
        }
      } finally {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        stream.close();
      }
    });
  }),
);
