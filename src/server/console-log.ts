/**
 * The server's log on a console: pretty lines when a person reads a terminal, JSON lines (one object each,
 * for log collectors) otherwise. Pretty printing uses `pino-pretty`, a devDependency: where it is not
 * installed (a production install), the log stays JSON rather than failing.
 */
import type { FastifyServerOptions } from 'fastify';

export type LogFormat = 'auto' | 'json' | 'pretty';

export const LOG_FORMATS: readonly LogFormat[] = ['auto', 'json', 'pretty'];

interface Destination {
  write(line: string): unknown;
  isTTY?: boolean;
}

type PrettyFactory = (options: Record<string, unknown>) => Destination;

/** Loads pino-pretty's stream factory, or returns null where the package is not installed. */
async function loadPretty(): Promise<PrettyFactory | null> {
  try {
    const loaded = (await import('pino-pretty')) as unknown as { default?: PrettyFactory };
    return loaded.default ?? null;
  } catch {
    return null;
  }
}

/** Fastify `logger` options writing to `destination` (default stderr) in `format`. */
export async function consoleLogger(
  level: string,
  format: LogFormat = 'auto',
  destination: Destination = process.stderr,
  load: () => Promise<PrettyFactory | null> = loadPretty,
): Promise<NonNullable<FastifyServerOptions['logger']>> {
  const wantsPretty = format === 'pretty' || (format === 'auto' && destination.isTTY === true);
  const pretty = wantsPretty ? await load() : null;
  if (!pretty) return { level, stream: destination };
  const stream = pretty({
    destination,
    // Synchronous, so lines written just before exit (the drain after SIGTERM) are not lost.
    sync: true,
    colorize: destination.isTTY === true,
    translateTime: 'SYS:HH:MM:ss.l',
    ignore: 'pid,hostname',
  });
  return { level, stream };
}
