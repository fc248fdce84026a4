/** Commands on queues: ls, stats, redrive, purge, pause, resume. */
import { createInterface } from 'node:readline/promises';
import { Command } from 'commander';
import { MESSAGE_STATES, type MessageState } from '../../core/types.ts';
import { action, parseIntOption, UsageError, withConnection, withFerry } from '../context.ts';
import { messagesTable, printJson, println, statsTable } from '../output.ts';

function checkStates(text: string): MessageState[] {
  const states = text.split(',').map((s) => s.trim());
  for (const state of states) {
    if (!MESSAGE_STATES.includes(state as MessageState)) {
      throw new UsageError(`unknown state ${JSON.stringify(state)}; states are ${MESSAGE_STATES.join(', ')}`);
    }
  }
  return states as MessageState[];
}

export const lsCommand = withConnection(
  new Command('ls')
    .description('list the queues; with a queue, list its messages a page at a time')
    .argument('[queue]', 'list this queue’s messages')
    .option('--state <state>', `only messages in this state (${MESSAGE_STATES.join(', ')})`)
    .option('--limit <n>', 'messages per page (1–1000)', '50')
    .option('--cursor <cursor>', 'the cursor the previous page printed'),
).action(
  action(
    async (queue: string | undefined, flags: { state?: string; limit: string; cursor?: string; json?: boolean }) => {
      await withFerry(flags, async (ferry) => {
        if (queue === undefined) {
          if (flags.state !== undefined || flags.cursor !== undefined) {
            throw new UsageError('--state and --cursor need a queue: ferry ls QUEUE --state dead');
          }
          const queues = await ferry.queues();
          if (flags.json) printJson(queues);
          else println(statsTable(queues));
          return;
        }
        const state = flags.state === undefined ? undefined : checkStates(flags.state);
        if (state && state.length > 1) throw new UsageError('--state takes one state here');
        const page = await ferry.list(queue, {
          limit: parseIntOption(flags.limit, '--limit', 1),
          ...(state && { state: state[0] }),
          ...(flags.cursor !== undefined && { cursor: flags.cursor }),
        });
        if (flags.json) printJson(page);
        else {
          println(messagesTable(page.messages));
          if (page.cursor) {
            // The next page is the same listing: the hint keeps the filters and page size it was asked with.
            const same = [
              flags.state !== undefined && `--state ${flags.state}`,
              flags.limit !== '50' && `--limit ${flags.limit}`,
            ];
            println(['more: ferry ls', queue, ...same.filter(Boolean), '--cursor', page.cursor].join(' '));
          }
        }
      });
    },
  ),
);

export const statsCommand = withConnection(
  new Command('stats')
    .description('counts of messages by state, for one queue or all of them, as a table')
    .argument('[queue]', 'only this queue'),
).action(
  action(async (queue: string | undefined, flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const queues = queue === undefined ? await ferry.queues() : [await ferry.stats(queue)];
      if (flags.json) printJson(queue === undefined ? queues : queues[0]);
      else println(statsTable(queues));
    });
  }),
);

export const redriveCommand = withConnection(
  new Command('redrive')
    .description('move every dead message of a queue back to waiting, with fresh attempts')
    .argument('<queue>', 'queue name'),
).action(
  action(async (queue: string, flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const { moved } = await ferry.redrive(queue);
      if (flags.json) printJson({ queue, moved });
      else println(`moved ${moved} dead messages of ${queue} back to waiting`);
    });
  }),
);

async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

export const purgeCommand = withConnection(
  new Command('purge')
    .description('delete a queue’s messages (by default every state but active); asks first unless --yes')
    .argument('<queue>', 'queue name')
    .option('--state <states>', 'only these states, comma-separated, e.g. completed,dead')
    .option('-y, --yes', 'do not ask for confirmation (required when stdin is not a terminal)'),
).action(
  action(async (queue: string, flags: { state?: string; yes?: boolean; json?: boolean }) => {
    const states = flags.state === undefined ? undefined : checkStates(flags.state);
    if (!flags.yes) {
      if (!process.stdin.isTTY) throw new UsageError('purge deletes messages: pass --yes to confirm');
      const what = states ? states.join(', ') : 'all but active';
      if (!(await confirm(`delete the ${what} messages of ${queue}? [y/N] `))) {
        process.stderr.write('nothing deleted\n');
        return;
      }
    }
    await withFerry(flags, async (ferry) => {
      const { purged } = await ferry.purge(queue, states ? { state: states } : {});
      if (flags.json) printJson({ queue, purged });
      else println(`deleted ${purged} messages of ${queue}`);
    });
  }),
);

function pauseCommand(name: 'pause' | 'resume', description: string) {
  return withConnection(new Command(name).description(description).argument('<queue>', 'queue name')).action(
    action(async (queue: string, flags: { json?: boolean }) => {
      await withFerry({ ...flags, create: true }, async (ferry) => {
        await ferry[name](queue);
        if (flags.json) printJson({ queue, paused: name === 'pause' });
        else println(`${queue} ${name === 'pause' ? 'paused' : 'resumed'}`);
      });
    }),
  );
}

export const pauseQueueCommand = pauseCommand('pause', 'stop delivering a queue’s messages (sends still land)');
export const resumeQueueCommand = pauseCommand('resume', 'deliver a paused queue’s messages again');
