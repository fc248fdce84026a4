/**
 * `ferry work QUEUE -- COMMAND...`: runs a command per message, so a program in any language can be a worker.
 * The payload is written as JSON to its stdin; exit 0 acks with its stdout as the result (JSON if it parses,
 * else the trimmed text, null if empty); any other exit nacks with its stderr as the error.
 */
import { spawn } from 'node:child_process';
import { Command } from 'commander';
import { parseDuration } from '../../core/duration.ts';
import type { Job } from '../../core/types.ts';
import { action, parseIntOption, UsageError, withConnection, withFerry } from '../context.ts';
import { brief, printJson, println } from '../output.ts';

/** Output kept from a command; beyond this the rest is dropped (a result is 1 MiB at most anyway). */
const MAX_OUTPUT = 1024 * 1024;
/** How much of stderr becomes the error message. */
const MAX_ERROR = 4000;

export class CommandFailed extends Error {
  constructor(
    message: string,
    readonly data: { exitCode: number | null; signal: string | null },
  ) {
    super(message);
    this.name = 'CommandFailed';
  }
}

function parseOutput(stdout: string): unknown {
  const text = stdout.trim();
  if (text === '') return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** Runs the command for one job; resolves with its result, rejects with its failure. */
export function runCommand(argv: string[], job: Job, timeoutMs: number | null): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const [file, ...args] = argv as [string, ...string[]];
    const child = spawn(file, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, FERRY_MESSAGE_ID: job.id, FERRY_QUEUE: job.queue, FERRY_ATTEMPT: String(job.attempt) },
    });
    let stdout = '';
    let stderr = '';
    let killedBy: string | null = null;
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      if (stdout.length < MAX_OUTPUT) stdout += chunk;
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => {
      if (stderr.length < MAX_OUTPUT) stderr += chunk;
    });
    // A command that exits without reading its stdin makes the write fail with EPIPE: that is its business.
    child.stdin.on('error', () => {});
    child.stdin.end(JSON.stringify(job.payload ?? null));

    const kill = (why: string) => {
      killedBy = why;
      child.kill('SIGTERM');
      setTimeout(() => child.kill('SIGKILL'), 5000).unref();
    };
    const onAbort = () => kill('the message was cancelled or its lease was lost');
    job.signal.addEventListener('abort', onAbort, { once: true });
    const timer = timeoutMs === null ? null : setTimeout(() => kill(`timed out after ${timeoutMs}ms`), timeoutMs);

    const settle = () => {
      job.signal.removeEventListener('abort', onAbort);
      if (timer) clearTimeout(timer);
    };
    child.on('error', (error) => {
      settle();
      reject(new CommandFailed(`cannot run ${file}: ${error.message}`, { exitCode: null, signal: null }));
    });
    child.on('close', (exitCode, signal) => {
      settle();
      if (exitCode === 0) return resolve(parseOutput(stdout));
      const tail = stderr.trim().slice(-MAX_ERROR);
      const why = killedBy ?? (signal ? `killed by ${signal}` : `exited with code ${exitCode}`);
      reject(new CommandFailed(tail === '' ? `${file} ${why}` : tail, { exitCode, signal }));
    });
  });
}

interface WorkFlags {
  concurrency: string;
  lease?: string;
  timeout?: string;
  count?: string;
  json?: boolean;
}

export const workCommand = withConnection(
  new Command('work')
    .description(
      'run COMMAND once per message: payload JSON on its stdin; exit 0 acks with stdout as the result ' +
        '(JSON, else text), any other exit nacks with stderr as the error. Stops on SIGINT or SIGTERM.',
    )
    .usage('[options] <queue> -- <command...>')
    .argument('<queue>', 'queue name')
    .argument('<command...>', 'the command and its arguments, after --')
    .option('-c, --concurrency <n>', 'commands running at once', '1')
    .option('--lease <duration>', 'lease per delivery, renewed while the command runs')
    .option('--timeout <duration>', 'kill a command running longer than this (the message is nacked)')
    .option('--count <n>', 'stop after this many messages'),
).action(
  action(async (queue: string, argv: string[], flags: WorkFlags) => {
    if (argv.length === 0) throw new UsageError('give the command to run after --, e.g. ferry work q -- ./handle.sh');
    const concurrency = parseIntOption(flags.concurrency, '--concurrency', 1);
    const timeoutMs = flags.timeout === undefined ? null : parseDuration(flags.timeout, '--timeout', 1);
    const limit = flags.count === undefined ? Number.POSITIVE_INFINITY : parseIntOption(flags.count, '--count', 1);
    await withFerry({ ...flags, create: true }, async (ferry) => {
      let done = 0;
      let finish: () => void = () => {};
      const finished = new Promise<void>((resolve) => {
        finish = resolve;
      });
      const report = (job: Job, startedAt: number, outcome: { result?: unknown; error?: string }) => {
        const ms = Math.round(performance.now() - startedAt);
        if (flags.json) printJson({ id: job.id, attempt: job.attempt, ms, ok: !('error' in outcome), ...outcome });
        else if ('error' in outcome)
          println(`✗ ${job.id} attempt ${job.attempt} ${ms}ms: ${brief(outcome.error, 200)}`);
        else println(`✓ ${job.id} attempt ${job.attempt} ${ms}ms ${brief(outcome.result)}`);
        if (++done >= limit) finish();
      };
      const worker = ferry.work(
        queue,
        async (job) => {
          const startedAt = performance.now();
          try {
            const result = await runCommand(argv, job, timeoutMs);
            report(job, startedAt, { result });
            return result;
          } catch (error) {
            report(job, startedAt, { error: (error as Error).message });
            throw error;
          }
        },
        {
          concurrency,
          ...(flags.lease !== undefined && { lease: flags.lease }),
          onError: (error) => process.stderr.write(`ferry: worker: ${(error as Error)?.message ?? error}\n`),
        },
      );
      if (!flags.json)
        process.stderr.write(`working on ${queue} with ${argv.join(' ')} (concurrency ${concurrency})\n`);
      process.once('SIGINT', finish);
      process.once('SIGTERM', finish);
      await finished;
      process.off('SIGINT', finish);
      process.off('SIGTERM', finish);
      await worker.close();
    });
  }),
);
