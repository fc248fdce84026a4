#!/usr/bin/env node
/** The `ferry` command line (SPEC §5). */
import { Command, CommanderError } from 'commander';
import { benchCommand } from './commands/bench.ts';
import { configureCommand } from './commands/configure.ts';
import { eventsCommand } from './commands/events.ts';
import { childrenCommand, flowCommand } from './commands/flows.ts';
import {
  ackCommand,
  cancelCommand,
  getCommand,
  nackCommand,
  receiveCommand,
  retryCommand,
} from './commands/messages.ts';
import {
  lsCommand,
  pauseQueueCommand,
  purgeCommand,
  redriveCommand,
  resumeQueueCommand,
  statsCommand,
} from './commands/queues.ts';
import { schedulesCommand } from './commands/schedules.ts';
import { sendCommand } from './commands/send.ts';
import { serveCommand } from './commands/serve.ts';
import { topicsCommand } from './commands/topics.ts';
import { webhooksCommand } from './commands/webhooks.ts';
import { workCommand } from './commands/work.ts';
import { EXIT, EXIT_HELP } from './context.ts';

// `ferry events | head` closes stdout early: that is the reader saying it has enough, not an error.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(EXIT.ok);
  throw error;
});

const program = new Command('ferry')
  .description('Ferry: a durable broker for asynchronous messages and tasks')
  .version('0.1.0')
  .addHelpText(
    'after',
    `
Every command but serve works against --store URL (default sqlite:./ferry-data/ferry.db, or FERRY_STORE)
or --server URL (or FERRY_SERVER, with --token or FERRY_TOKEN). Try: ferry send demo '{"hello":1}'
${EXIT_HELP}`,
  );

for (const command of [
  serveCommand,
  sendCommand,
  flowCommand,
  receiveCommand,
  ackCommand,
  nackCommand,
  getCommand,
  childrenCommand,
  lsCommand,
  statsCommand,
  cancelCommand,
  retryCommand,
  redriveCommand,
  purgeCommand,
  pauseQueueCommand,
  resumeQueueCommand,
  configureCommand,
  eventsCommand,
  topicsCommand,
  schedulesCommand,
  webhooksCommand,
  workCommand,
  benchCommand,
]) {
  // Settings are not inherited by commands built apart and added with addCommand: set them on each, and on
  // the subcommands of topics and schedules.
  for (const c of [command, ...command.commands]) c.exitOverride().showHelpAfterError('(add --help for usage)');
  program.addCommand(command);
}
program.exitOverride().showHelpAfterError('(add --help for usage)');

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) {
    // Help and version exit 0; every parsing problem (unknown option, missing argument…) is a usage error.
    process.exitCode = error.exitCode === 0 ? EXIT.ok : EXIT.usage;
  } else {
    process.stderr.write(`ferry: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exitCode = EXIT.error;
  }
}
