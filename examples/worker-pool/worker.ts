/** The worker pool: turns each message of the `emails` queue into one delivery through the relay. */
import { type Ferry, type Job, UnrecoverableError, type Worker } from '../../src/index.ts';
import { deliver, type Email, PermanentMailError } from './mailer.ts';

export const QUEUE = 'emails';

export function startMailWorkers(ferry: Ferry, concurrency: number): Worker {
  return ferry.work<Email, { messageId: string; attempt: number }>(
    QUEUE,
    async (job: Job<Email>) => {
      try {
        const { messageId } = await deliver(job.payload, job.attempt);
        return { messageId, attempt: job.attempt };
      } catch (error) {
        // A 5xx will never succeed: UnrecoverableError makes the message dead now instead of retrying it.
        if (error instanceof PermanentMailError) throw new UnrecoverableError(error.message);
        // Anything else is thrown as it is: Ferry retries it after the queue's backoff.
        console.log(`  attempt ${job.attempt} for ${job.payload.to} failed: ${(error as Error).message}`);
        throw error;
      }
    },
    { concurrency },
  );
}
