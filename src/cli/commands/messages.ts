/** Commands on single messages: receive, ack, nack, get, cancel, retry. */
import { Command } from 'commander';
import { MessageFailedError, NotFoundError } from '../../core/errors.ts';
import type { NackOptions } from '../../core/types.ts';
import { action, parseIntOption, parseJson, withConnection, withFerry } from '../context.ts';
import { deliveriesTable, messageDetails, printJson, println } from '../output.ts';

export const receiveCommand = withConnection(
  new Command('receive')
    .description('lease messages from a queue and print them with their receipts (for ack or nack)')
    .argument('<queue>', 'queue name')
    .option('--max <n>', 'at most this many messages', '1')
    .option('--wait <duration>', 'wait up to this long for the first message, e.g. 20s')
    .option('--lease <duration>', 'lease length, e.g. 1m'),
).action(
  action(async (queue: string, flags: { max: string; wait?: string; lease?: string; json?: boolean }) => {
    const max = parseIntOption(flags.max, '--max', 1);
    await withFerry(flags, async (ferry) => {
      const deliveries = await ferry.receive(queue, {
        max,
        ...(flags.wait !== undefined && { wait: flags.wait }),
        ...(flags.lease !== undefined && { lease: flags.lease }),
      });
      if (flags.json) printJson(deliveries);
      else println(deliveriesTable(deliveries));
    });
  }),
);

export const ackCommand = withConnection(
  new Command('ack')
    .description('acknowledge a delivery, with an optional JSON result')
    .argument('<id>', 'message id')
    .argument('<receipt>', 'the receipt that receive printed')
    .argument('[result]', 'the result as JSON'),
).action(
  action(async (id: string, receipt: string, text: string | undefined, flags: { json?: boolean }) => {
    const result = text === undefined ? undefined : parseJson(text, 'the result');
    await withFerry(flags, async (ferry) => {
      await ferry.ack({ id, receipt }, result);
      if (flags.json) printJson({ id, state: 'completed' });
      else println(`${id} completed`);
    });
  }),
);

export const nackCommand = withConnection(
  new Command('nack')
    .description('end a delivery as failed: it is retried after its backoff, or dead when out of attempts')
    .argument('<id>', 'message id')
    .argument('<receipt>', 'the receipt that receive printed')
    .option('--error <message>', 'why it failed')
    .option('--delay <duration>', 'retry after this long instead of the backoff')
    .option('--no-retry', 'make it dead at once'),
).action(
  action(
    async (id: string, receipt: string, flags: { error?: string; delay?: string; retry: boolean; json?: boolean }) => {
      const options: NackOptions = { retry: flags.retry };
      if (flags.error !== undefined) options.error = { message: flags.error };
      if (flags.delay !== undefined) options.delay = flags.delay;
      await withFerry(flags, async (ferry) => {
        const { state } = await ferry.nack({ id, receipt }, options);
        if (flags.json) printJson({ id, state });
        else println(`${id} ${state}`);
      });
    },
  ),
);

export const getCommand = withConnection(
  new Command('get')
    .description('show a message: state, payload, result or error (exit 3 when there is no such message)')
    .argument('<id>', 'message id')
    .option('--wait [duration]', 'first wait until it is completed, dead or cancelled (optionally at most this long)'),
).action(
  action(async (id: string, flags: { wait?: string | true; json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      if (flags.wait !== undefined) {
        await ferry.result(id, flags.wait === true ? {} : { timeout: flags.wait }).catch((error: unknown) => {
          // Ending dead or cancelled is an answer here, not an error: the message is printed below.
          if (!(error instanceof MessageFailedError)) throw error;
        });
      }
      const info = await ferry.get(id);
      if (!info) throw new NotFoundError(`no message ${id}`);
      if (flags.json) printJson(info);
      else println(messageDetails(info));
    });
  }),
);

function stateCommand(name: 'cancel' | 'retry', description: string) {
  return withConnection(new Command(name).description(description).argument('<id>', 'message id')).action(
    action(async (id: string, flags: { json?: boolean }) => {
      await withFerry(flags, async (ferry) => {
        const { state } = await ferry[name](id);
        if (flags.json) printJson({ id, state });
        else println(`${id} ${state}`);
      });
    }),
  );
}

export const cancelCommand = stateCommand(
  'cancel',
  'cancel a message: at once if waiting or delayed, when its attempt ends if active',
);
export const retryCommand = stateCommand(
  'retry',
  'make a dead or cancelled message waiting again with fresh attempts, or a delayed one due now',
);
