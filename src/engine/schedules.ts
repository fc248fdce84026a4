/** Cron schedules: checking definitions, computing ticks (croner), and the message each tick sends. */
import { Cron } from 'croner';
import { InvalidRequestError } from '../core/errors.ts';
import type { ScheduleDefinition, ScheduleInfo, SendOptions } from '../core/types.ts';
import { checkKeys, checkObject, checkQueueName, checkSendOptions, QUEUE_NAME } from '../core/validate.ts';
import type { ScheduleRecord } from '../store/store.ts';

function cron(pattern: string, tz: string): Cron {
  try {
    return new Cron(pattern, { timezone: tz, paused: true });
  } catch (error) {
    // croner prefixes its messages with its own class name, which means nothing to the user.
    const why = (error as Error).message.replace(/^CronPattern:\s*/, '');
    throw new InvalidRequestError(`cron ${JSON.stringify(pattern)} is not valid: ${why}`);
  }
}

/** The first tick strictly after `after`. */
export function nextTick(pattern: string, tz: string, after: number): number {
  let next: Date | null;
  try {
    next = cron(pattern, tz).nextRun(new Date(after));
  } catch (error) {
    // cron() already said what is wrong with the pattern; what fails here is the time zone.
    if (error instanceof InvalidRequestError) throw error;
    throw new InvalidRequestError(
      `cron ${JSON.stringify(pattern)} in tz ${JSON.stringify(tz)}: ${(error as Error).message}`,
    );
  }
  if (!next) throw new InvalidRequestError(`cron ${JSON.stringify(pattern)} never fires again`);
  return next.getTime();
}

/** Checks a definition (name, cron, tz, queue, options) and builds its record, first tick after `now`. */
export function checkSchedule(
  name: string,
  definition: ScheduleDefinition,
  serializePayload: (value: unknown) => string,
  now: number,
): ScheduleRecord {
  if (typeof name !== 'string' || !QUEUE_NAME.test(name)) {
    throw new InvalidRequestError(`schedule name must match ${QUEUE_NAME.source}; got ${JSON.stringify(name)}`);
  }
  const d = checkObject(definition, 'schedule') as unknown as ScheduleDefinition;
  checkKeys(d as unknown as Record<string, unknown>, ['cron', 'tz', 'queue', 'payload', 'options'], 'schedule');
  if (typeof d.cron !== 'string' || d.cron.length > 200)
    throw new InvalidRequestError('cron must be a cron expression string');
  if (d.tz !== undefined && (typeof d.tz !== 'string' || d.tz.length > 64)) {
    throw new InvalidRequestError('tz must be an IANA time zone name such as "Europe/Paris"');
  }
  const tz = d.tz ?? 'UTC';
  try {
    // Checked here, once, in words the user can act on: croner's own message nests three layers of causes.
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
  } catch {
    throw new InvalidRequestError(
      `tz ${JSON.stringify(tz)} is not a time zone: use an IANA name such as "Europe/Paris"`,
    );
  }
  checkQueueName(d.queue);
  const options = (d.options ?? {}) as SendOptions;
  if (options.transaction !== undefined) throw new InvalidRequestError('a schedule cannot send in a transaction');
  checkSendOptions(options, now);
  return {
    name,
    cron: d.cron,
    tz,
    queue: d.queue,
    payload: serializePayload(d.payload ?? null),
    options: JSON.stringify(options),
    nextAt: nextTick(d.cron, tz, now),
    lastAt: null,
  };
}

export function toScheduleInfo(record: ScheduleRecord): ScheduleInfo {
  return {
    name: record.name,
    cron: record.cron,
    tz: record.tz,
    queue: record.queue,
    payload: JSON.parse(record.payload),
    options: JSON.parse(record.options),
    nextRunAt: new Date(record.nextAt).toISOString(),
    lastRunAt: record.lastAt === null ? null : new Date(record.lastAt).toISOString(),
  };
}
