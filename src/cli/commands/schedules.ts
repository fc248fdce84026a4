/** `ferry schedules`: named cron schedules that send a message into a queue at every tick. */
import { Command } from 'commander';
import { NotFoundError } from '../../core/errors.ts';
import type { ScheduleDefinition } from '../../core/types.ts';
import { action, parseJson, UsageError, withConnection, withFerry } from '../context.ts';
import { brief, printJson, println, table } from '../output.ts';

interface PutFlags {
  cron: string;
  queue: string;
  tz?: string;
  options?: string;
  json?: boolean;
}

const putCommand = withConnection(
  new Command('put')
    .description('create or replace a schedule: a message into --queue at every tick of --cron')
    .argument('<name>', 'schedule name')
    .argument('[json]', 'the payload of each message, as JSON (default null)')
    .requiredOption('--cron <expression>', 'five fields (minute hour day month weekday), or six with seconds first')
    .requiredOption('--queue <queue>', 'the queue each tick sends to')
    .option('--tz <zone>', 'IANA time zone the cron is read in (default UTC)')
    .option('--options <json>', 'send options of each message as JSON, e.g. \'{"priority":5}\''),
).action(
  action(async (name: string, text: string | undefined, flags: PutFlags) => {
    const definition: ScheduleDefinition = { cron: flags.cron, queue: flags.queue };
    if (flags.tz !== undefined) definition.tz = flags.tz;
    if (text !== undefined) definition.payload = parseJson(text, 'the payload');
    if (flags.options !== undefined) {
      definition.options = parseJson(flags.options, '--options') as ScheduleDefinition['options'];
    }
    await withFerry({ ...flags, create: true }, async (ferry) => {
      const info = await ferry.schedule(name, definition);
      if (flags.json) printJson(info);
      else println(`${info.name}: ${info.cron} (${info.tz}) into ${info.queue}, next at ${info.nextRunAt}`);
    });
  }),
);

const rmCommand = withConnection(
  new Command('rm').description('remove a schedule').argument('<name>', 'schedule name'),
).action(
  action(async (name: string, flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const { deleted } = await ferry.unschedule(name);
      if (!deleted) throw new NotFoundError(`no schedule named ${name}`);
      if (flags.json) printJson({ name, deleted });
      else println(`removed schedule ${name}`);
    });
  }),
);

const lsCommand = withConnection(new Command('ls').description('list every schedule with its next tick')).action(
  action(async (flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const schedules = await ferry.schedules();
      if (flags.json) printJson(schedules);
      else if (schedules.length === 0) println('no schedules yet');
      else
        println(
          table(
            ['name', 'cron', 'tz', 'queue', 'next', 'last', 'payload'],
            schedules.map((s) => [s.name, s.cron, s.tz, s.queue, s.nextRunAt, s.lastRunAt ?? '', brief(s.payload, 40)]),
          ),
        );
    });
  }),
);

export const schedulesCommand = new Command('schedules')
  .description('cron schedules: put, rm, ls')
  .addCommand(putCommand)
  .addCommand(rmCommand)
  .addCommand(lsCommand)
  .action(
    action(async () => {
      throw new UsageError('give a schedules command: put, rm or ls (add --help for usage)');
    }),
  );
