/**
 * What every command shares: where Ferry is (`--store` or `--server`), how to print (`--json`), and how an
 * error becomes a message on stderr and an exit code.
 */
import { existsSync } from 'node:fs';
import { type Command, Option } from 'commander';
import { EXIT, errorKind, FerryError, UnavailableError } from '../core/errors.ts';
import { redactUrl } from '../core/redact.ts';
import type { Ferry } from '../core/types.ts';

export { EXIT };

export const EXIT_HELP = `
Exit codes: 0 ok, 1 error (e.g. store unavailable), 2 usage or invalid input, 3 not found, 4 lease lost,
5 unauthorized or forbidden, 6 conflict with the message's state, 7 timed out, 8 the awaited message ended
dead or cancelled.`;

export interface ConnectionOptions {
  store?: string;
  server?: string;
  token?: string;
  json?: boolean;
  /**
   * Whether this command may create the store: those that write messages or settings do (send, work,
   * pause…); those that read or act on existing messages refuse a `sqlite:` file that does not exist, so a
   * mistyped path is an error, not a new empty database.
   */
  create?: boolean;
}

/** Adds `--store`, `--server`, `--token` and `--json` to a command. */
export function withConnection(command: Command): Command {
  return command
    .addOption(
      new Option('--store <url>', 'store URL: sqlite:PATH, memory: or postgres://…')
        .env('FERRY_STORE')
        .conflicts('server'),
    )
    .addOption(new Option('--server <url>', 'a Ferry server, e.g. http://127.0.0.1:7070').env('FERRY_SERVER'))
    .addOption(new Option('--token <token>', 'bearer token for --server').env('FERRY_TOKEN'))
    .option('--json', 'print JSON for scripts instead of human output');
}

/** A usage error found after commander parsed the arguments (bad JSON, a missing flag…): exit 2. */
export class UsageError extends Error {}

/**
 * The server URL as given, or with `http://` in front when it has no scheme (`localhost:7070`,
 * `127.0.0.1:7070`), which `new URL` would otherwise read as a scheme of its own.
 */
export function serverUrl(text: string): string {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(`--server must be a URL like http://127.0.0.1:7070, got ${JSON.stringify(text)}`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(`--server must be an http:// or https:// URL, got ${JSON.stringify(text)}`);
  }
  return url.toString().replace(/\/$/, '');
}

/** Opens the store or connects to the server the options name. */
export async function openFerry(options: ConnectionOptions): Promise<Ferry> {
  if (options.server) {
    const url = serverUrl(options.server);
    // Loaded on demand: a command against a store never loads the HTTP client, and the reverse.
    const { connect } = await import('../client/index.ts');
    return connect(url, options.token ? { token: options.token } : {});
  }
  const { open, DEFAULT_STORE, sqliteFile } = await import('../open.ts');
  const store = options.store ?? DEFAULT_STORE;
  const file = sqliteFile(store);
  if (!options.create && file !== undefined && !existsSync(file)) {
    throw new UnavailableError(
      `no Ferry store at ${file} (from ${store}); this command does not create one: check the path, or send a message to create it`,
    );
  }
  // A command comes and goes: webhooks are delivered by the long-running processes (serve, applications).
  return open(store, { webhookDelivery: false });
}

/** Runs `body` with an open Ferry and closes it afterwards, whatever happens. */
export async function withFerry<T>(options: ConnectionOptions, body: (ferry: Ferry) => Promise<T>): Promise<T> {
  const ferry = await openFerry(options);
  try {
    return await body(ferry);
  } finally {
    await ferry.close().catch(() => {});
  }
}

/** The exit code an error deserves. */
export function exitCodeOf(error: unknown): number {
  if (error instanceof UsageError) return EXIT.usage;
  if (error instanceof FerryError) return errorKind(error.code)?.exit ?? EXIT.error;
  return EXIT.error;
}

/** Reports an error on stderr (as JSON with `--json`) and sets the exit code. */
export function fail(error: unknown, json: boolean): void {
  const code = exitCodeOf(error);
  // A URL in a message (the store's, the server's) keeps its user and host, not its password.
  const message = redactUrl(error instanceof Error ? error.message : String(error));
  if (json) {
    const type = error instanceof FerryError ? error.code : code === EXIT.usage ? 'usage' : 'error';
    process.stderr.write(`${JSON.stringify({ error: { type, message } })}\n`);
  } else {
    process.stderr.write(`ferry: ${message}\n`);
  }
  process.exitCode = code;
}

/** Wraps a command's action: opens nothing itself, but turns any throw into a message and an exit code. */
export function action<A extends unknown[]>(
  body: (...args: A) => Promise<void>,
): (...args: [...A, Command]) => Promise<void> {
  return async (...args) => {
    const command = args[args.length - 1] as Command;
    try {
      await body(...(args.slice(0, -1) as A));
    } catch (error) {
      fail(error, Boolean(command.opts().json));
    }
  };
}

/** Parses a JSON argument, or throws a usage error that says which one was malformed. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new UsageError(`${what} must be JSON (${why}); to send a string, quote it: '"text"'`);
  }
}

/** Parses a whole number option, or throws a usage error. */
export function parseIntOption(value: string, what: string, min = 0): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`${what} must be a whole number ≥ ${min}, got ${value}`);
  return n;
}
