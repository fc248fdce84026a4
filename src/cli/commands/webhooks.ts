/** `ferry webhooks`: endpoints that receive events, signed as Standard Webhooks do (SPEC §6). */
import { Command, Option } from 'commander';
import { NotFoundError } from '../../core/errors.ts';
import type { EventType, WebhookDefinition } from '../../core/types.ts';
import { action, parseIntOption, UsageError, withConnection, withFerry } from '../context.ts';
import { printJson, println, table } from '../output.ts';

interface PutFlags {
  url: string;
  secret: string;
  queues?: string;
  types?: string;
  json?: boolean;
}

const list = (text: string | undefined) =>
  text === undefined
    ? undefined
    : text
        .split(',')
        .map((s) => s.trim())
        .filter((s) => s !== '');

const putCommand = withConnection(
  new Command('put')
    .description('create or replace a webhook: matching events are POSTed to --url, signed with --secret')
    .argument('<name>', 'webhook name')
    .requiredOption('--url <url>', 'http:// or https:// URL the events are POSTed to')
    .addOption(
      new Option('--secret <whsec>', 'signing secret: whsec_ and the base64 of 24 to 64 bytes')
        .env('FERRY_WEBHOOK_SECRET')
        .makeOptionMandatory(),
    )
    .option('--queues <names>', 'only events of these queues, comma-separated (default all)')
    .option('--types <types>', 'only these event types, comma-separated (default completed,dead)'),
).action(
  action(async (name: string, flags: PutFlags) => {
    const definition: WebhookDefinition = { url: flags.url, secret: flags.secret };
    const queues = list(flags.queues);
    const types = list(flags.types);
    if (queues !== undefined) definition.queues = queues;
    if (types !== undefined) definition.types = types as EventType[];
    await withFerry({ ...flags, create: true }, async (ferry) => {
      const info = await ferry.putWebhook(name, definition);
      if (flags.json) printJson(info);
      else
        println(
          `${info.name}: ${info.types.join(',')} events of ${info.queues?.join(',') ?? 'every queue'} to ${info.url}`,
        );
    });
  }),
);

const rmCommand = withConnection(
  new Command('rm').alias('delete').description('remove a webhook').argument('<name>', 'webhook name'),
).action(
  action(async (name: string, flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const { deleted } = await ferry.deleteWebhook(name);
      if (!deleted) throw new NotFoundError(`no webhook named ${name}`);
      if (flags.json) printJson({ name, deleted });
      else println(`removed webhook ${name}`);
    });
  }),
);

const lsCommand = withConnection(
  new Command('ls').alias('list').description('list every webhook (secrets are never shown)'),
).action(
  action(async (flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const hooks = await ferry.webhooks();
      if (flags.json) printJson(hooks);
      else if (hooks.length === 0) println('no webhooks yet');
      else
        println(
          table(
            ['name', 'url', 'queues', 'types', 'updated'],
            hooks.map((h) => [h.name, h.url, h.queues?.join(',') ?? '(all)', h.types.join(','), h.updatedAt]),
          ),
        );
    });
  }),
);

const deliveriesCommand = withConnection(
  new Command('deliveries')
    .description("a webhook's recent delivery attempts, newest first")
    .argument('<name>', 'webhook name')
    .option('--limit <n>', 'at most this many (1–100)', '20'),
).action(
  action(async (name: string, flags: { limit: string; json?: boolean }) => {
    const limit = parseIntOption(flags.limit, '--limit', 1);
    await withFerry(flags, async (ferry) => {
      const deliveries = await ferry.webhookDeliveries(name, { limit });
      if (flags.json) printJson(deliveries);
      else if (deliveries.length === 0) println(`no deliveries to ${name} yet`);
      else
        println(
          table(
            ['at', 'event', 'queue', 'attempt', 'status', 'ms', 'outcome', 'error'],
            deliveries.map((d) => [
              d.at,
              `${d.event.type} ${d.event.id}`,
              d.event.queue,
              d.attempt,
              d.status ?? '',
              d.durationMs,
              d.outcome,
              d.error ?? '',
            ]),
          ),
        );
    });
  }),
);

export const webhooksCommand = new Command('webhooks')
  .description('webhooks: put, rm, ls, deliveries')
  .addCommand(putCommand)
  .addCommand(rmCommand)
  .addCommand(lsCommand)
  .addCommand(deliveriesCommand)
  .action(
    action(async () => {
      throw new UsageError('give a webhooks command: put, rm, ls or deliveries (add --help for usage)');
    }),
  );
