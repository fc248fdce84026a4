/** `ferry serve`: the HTTP API, the events stream and the dashboard. SIGTERM or SIGINT drains and exits 0. */
import { Command, Option } from 'commander';
import { parseDuration } from '../../core/duration.ts';
import { redactUrl } from '../../core/redact.ts';
import type { LogFormat } from '../../server/console-log.ts';
import { action, parseIntOption, UsageError } from '../context.ts';
import { printJson, println } from '../output.ts';

const collect = (value: string, previous: string[] | undefined) => [...(previous ?? []), value];

interface ServeFlags {
  store?: string;
  host: string;
  port: string;
  sqsPort?: string;
  token?: string[];
  cors?: string[];
  rateLimit?: string;
  eventRetention: string;
  webhookAllowPrivate?: boolean;
  logLevel: string;
  logFormat: LogFormat;
  json?: boolean;
}

export const serveCommand = new Command('serve')
  .description('serve the HTTP API, the events stream and the dashboard; SIGTERM or SIGINT drains and exits')
  .addOption(new Option('--store <url>', 'store URL: sqlite:PATH, memory: or postgres://…').env('FERRY_STORE'))
  .addOption(new Option('--host <host>', 'address to listen on').env('FERRY_HOST').default('127.0.0.1'))
  .addOption(new Option('--port <port>', 'port to listen on (0 picks a free one)').env('FERRY_PORT').default('7070'))
  .addOption(
    new Option('--sqs-port <port>', 'also answer the Amazon SQS API on this port (0 picks a free one)').env(
      'FERRY_SQS_PORT',
    ),
  )
  .addOption(
    new Option(
      '--token <token>',
      'require this bearer token, TOKEN[:queues=A,B][:scopes=send,receive,admin] (repeatable; FERRY_TOKENS separates entries by spaces or ;)',
    )
      .argParser(collect)
      .env('FERRY_TOKENS'),
  )
  .option('--cors <origin>', 'let pages on this origin call the API (repeatable)', collect)
  .addOption(
    new Option(
      '--rate-limit <rate>',
      'requests per token (per address without tokens): N/s, N/m or N/h, with an optional burst N/s:B',
    ).env('FERRY_RATE_LIMIT'),
  )
  .addOption(
    new Option('--event-retention <duration>', 'how long the event log keeps events for resuming streams')
      .env('FERRY_EVENT_RETENTION')
      .default('1d'),
  )
  .addOption(
    new Option(
      '--webhook-allow-private',
      'let webhooks reach loopback, private and link-local addresses (local development only)',
    ).env('FERRY_WEBHOOK_ALLOW_PRIVATE'),
  )
  .addOption(
    new Option('--log-level <level>', 'log level (the log goes to stderr)')
      .choices(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .env('FERRY_LOG_LEVEL')
      .default('info'),
  )
  .addOption(
    new Option('--log-format <format>', 'pretty lines on a terminal, JSON lines otherwise; or force one')
      .choices(['auto', 'json', 'pretty'])
      .env('FERRY_LOG_FORMAT')
      .default('auto'),
  )
  .option('--json', 'print where it listens as JSON')
  .action(
    action(async (flags: ServeFlags) => {
      const port = parseIntOption(flags.port, '--port');
      if (port > 65535) throw new UsageError(`--port must be at most 65535, got ${port}`);
      const sqsPort = flags.sqsPort === undefined ? undefined : parseIntOption(flags.sqsPort, '--sqs-port');
      if (sqsPort !== undefined && sqsPort > 65535) {
        throw new UsageError(`--sqs-port must be at most 65535, got ${sqsPort}`);
      }
      // Each value may hold several entries (FERRY_TOKENS separates them by spaces or ';'): the server parses them.
      const tokens = (flags.token ?? []).filter((t) => t.trim() !== '');
      // Loaded here, so other commands never pay for Fastify.
      const [{ startServer }, { dashboard }, { consoleLogger }, { parseRate }] = await Promise.all([
        import('../../server/index.ts'),
        import('../../dashboard/index.ts'),
        import('../../server/console-log.ts'),
        import('../../server/rate-limit.ts'),
      ]);
      const rateLimit = flags.rateLimit === undefined ? undefined : parseRate(flags.rateLimit);
      // Checked before anything opens, with the flag's name in the message.
      parseDuration(flags.eventRetention, '--event-retention');
      let server: Awaited<ReturnType<typeof startServer>>;
      try {
        server = await startServer({
          ...(flags.store !== undefined && { store: flags.store }),
          host: flags.host,
          port,
          ...(sqsPort !== undefined && { sqsPort }),
          ...(tokens.length > 0 && { tokens }),
          ...(flags.cors && { cors: flags.cors }),
          ...(rateLimit && { rateLimit }),
          eventRetention: flags.eventRetention,
          ...(flags.webhookAllowPrivate === true && { webhookAllowPrivate: true }),
          plugins: [dashboard],
          // Logs go to stderr, so stdout carries only what this command prints (and stays parseable with --json).
          logger: await consoleLogger(flags.logLevel, flags.logFormat),
        });
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') {
          throw new Error(
            `${flags.host}:${port}${sqsPort === undefined ? '' : ` or :${sqsPort}`} is already in use (another Ferry?): stop it, or pick other ports with --port N and --sqs-port N (0 picks a free one)`,
          );
        }
        throw error;
      }
      if (flags.json) printJson({ url: server.url, sqsUrl: server.sqsUrl, auth: tokens.length > 0 });
      else {
        println(`Ferry is listening on ${server.url}`);
        println(`  dashboard  ${server.url}/`);
        println(`  API        ${server.url}/v1  (OpenAPI at ${server.url}/openapi.json)`);
        if (server.sqsUrl) println(`  SQS        ${server.sqsUrl}  (aws --endpoint-url ${server.sqsUrl} sqs …)`);
        println(
          `  store      ${redactUrl(flags.store ?? 'sqlite:./ferry-data/ferry.db')}${tokens.length > 0 ? '  (auth on)' : ''}`,
        );
      }
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      if (!flags.json) println('draining…');
      await server.close();
      if (!flags.json) println('stopped');
    }),
  );
