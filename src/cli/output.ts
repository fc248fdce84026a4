/** Human and JSON output of the CLI. Human output goes to stdout; progress and logs go to stderr. */
import type { Delivery, FerryEvent, MessageInfo, QueueStats } from '../core/types.ts';

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`);
}

export function println(line = ''): void {
  process.stdout.write(`${line}\n`);
}

/** Aligns rows under a header; numbers are right-aligned. */
export function table(header: string[], rows: (string | number)[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => String(row[i] ?? '').length)));
  const numeric = header.map((_, i) => rows.length > 0 && rows.every((row) => typeof row[i] === 'number'));
  const line = (cells: (string | number)[]) =>
    cells
      .map((cell, i) => {
        const text = String(cell ?? '');
        const width = widths[i] ?? 0;
        return numeric[i] ? text.padStart(width) : text.padEnd(width);
      })
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

const STAT_COLUMNS = ['waiting', 'delayed', 'active', 'completed', 'dead', 'cancelled', 'pending'] as const;

export function statsTable(queues: QueueStats[]): string {
  if (queues.length === 0) return 'no queues yet';
  return table(
    ['queue', ...STAT_COLUMNS, 'paused'],
    queues.map((q) => [q.name, ...STAT_COLUMNS.map((c) => q[c]), q.paused ? 'yes' : '']),
  );
}

/** One JSON value on one line, cut to `max` characters. */
export function brief(value: unknown, max = 60): string {
  const text = value === undefined ? '' : JSON.stringify(value);
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

export function messagesTable(messages: MessageInfo[]): string {
  if (messages.length === 0) return 'no messages';
  return table(
    ['id', 'state', 'attempts', 'sent', 'payload'],
    messages.map((m) => [m.id, m.state, `${m.attempts}/${m.maxAttempts}`, m.sentAt, brief(m.payload)]),
  );
}

export function deliveriesTable(deliveries: Delivery[]): string {
  if (deliveries.length === 0) return 'no message ready';
  return table(
    ['id', 'attempt', 'receipt', 'payload'],
    deliveries.map((d) => [d.id, d.attempt, d.receipt, brief(d.payload)]),
  );
}

/** Every field of a message, one per line. */
export function messageDetails(m: MessageInfo): string {
  const rows: [string, unknown][] = [
    ['id', m.id],
    ['queue', m.queue],
    ['state', m.state],
    ['parentId', m.parentId],
    ['attempts', `${m.attempts}/${m.maxAttempts}`],
    ['priority', m.priority],
    ['key', m.key],
    ['dedupeId', m.dedupeId],
    ['sentAt', m.sentAt],
    ['runAt', m.runAt],
    ['startedAt', m.startedAt],
    ['finishedAt', m.finishedAt],
    ['progress', m.progress],
    ['payload', m.payload],
    ['result', m.result],
    ['error', m.error],
  ];
  if (Object.keys(m.headers ?? {}).length > 0) rows.push(['headers', m.headers]);
  return rows
    .filter(([, v]) => v !== null && v !== undefined)
    .map(([k, v]) => `${`${k}:`.padEnd(12)}${typeof v === 'string' ? v : JSON.stringify(v)}`)
    .join('\n');
}

export function eventLine(e: FerryEvent): string {
  const parts = [e.at, String(e.seq).padStart(6), e.type.padEnd(9), e.queue, e.id];
  if (e.attempt !== undefined) parts.push(`attempt=${e.attempt}`);
  if (e.progress !== undefined) parts.push(`progress=${brief(e.progress, 40)}`);
  if (e.result !== undefined) parts.push(`result=${brief(e.result, 40)}`);
  if (e.error !== undefined) parts.push(`error=${brief(e.error.message, 60)}`);
  return parts.join('  ');
}

/** A progress bar on one line, redrawn in place (for a TTY). */
export function progressBar(done: number, total: number | null, startedAt: number, width = 30): string {
  const seconds = Math.max((performance.now() - startedAt) / 1000, 0.001);
  const rate = Math.round(done / seconds);
  if (total === null || total === 0) return `\r${done} sent  ${rate}/s`;
  const filled = Math.round((done / total) * width);
  const bar = '#'.repeat(filled) + '.'.repeat(width - filled);
  const percent = Math.floor((done / total) * 100);
  return `\r[${bar}] ${percent}%  ${done}/${total}  ${rate}/s`;
}
