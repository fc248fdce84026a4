/** `ferry topics`: subscribe queues to a topic, list and remove them, publish to it. */
import { Command } from 'commander';
import { action, parseJson, UsageError, withConnection, withFerry } from '../context.ts';
import { printJson, println, table } from '../output.ts';

const lsCommand = withConnection(
  new Command('ls').description('list the queues subscribed to a topic').argument('<topic>', 'topic name'),
).action(
  action(async (topic: string, flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const queues = await ferry.subscriptions(topic);
      if (flags.json) printJson({ topic, queues });
      else println(queues.length === 0 ? `no queue is subscribed to ${topic}` : queues.join('\n'));
    });
  }),
);

const subscribeCommand = withConnection(
  new Command('subscribe')
    .description('subscribe a queue to a topic: each publish then sends it a copy (durable; again is a no-op)')
    .argument('<topic>', 'topic name')
    .argument('<queue>', 'queue name'),
).action(
  action(async (topic: string, queue: string, flags: { json?: boolean }) => {
    await withFerry({ ...flags, create: true }, async (ferry) => {
      await ferry.subscribe(topic, queue);
      if (flags.json) printJson({ topic, queue, subscribed: true });
      else println(`${queue} is subscribed to ${topic}`);
    });
  }),
);

const unsubscribeCommand = withConnection(
  new Command('unsubscribe')
    .description('unsubscribe a queue from a topic (messages already sent stay)')
    .argument('<topic>', 'topic name')
    .argument('<queue>', 'queue name'),
).action(
  action(async (topic: string, queue: string, flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      await ferry.unsubscribe(topic, queue);
      if (flags.json) printJson({ topic, queue, subscribed: false });
      else println(`${queue} is not subscribed to ${topic}`);
    });
  }),
);

const publishCommand = withConnection(
  new Command('publish')
    .description('send one copy of a message into every queue subscribed to the topic now')
    .argument('<topic>', 'topic name')
    .argument('<json>', 'the payload as JSON, e.g. \'{"order":42}\''),
).action(
  action(async (topic: string, text: string, flags: { json?: boolean }) => {
    const payload = parseJson(text, 'the payload');
    await withFerry({ ...flags, create: true }, async (ferry) => {
      const { messages } = await ferry.publish(topic, payload);
      if (flags.json) printJson({ topic, messages });
      else if (messages.length === 0) println(`no queue is subscribed to ${topic}: nothing sent`);
      else
        println(
          table(
            ['queue', 'id'],
            messages.map((m) => [m.queue, m.id]),
          ),
        );
    });
  }),
);

export const topicsCommand = new Command('topics')
  .description('fan-out: which queues a topic sends to (ls, subscribe, unsubscribe) and publish')
  .addCommand(lsCommand)
  .addCommand(subscribeCommand)
  .addCommand(unsubscribeCommand)
  .addCommand(publishCommand)
  .action(
    action(async () => {
      throw new UsageError('give a topics command: ls, subscribe, unsubscribe or publish (add --help for usage)');
    }),
  );
