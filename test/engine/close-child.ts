/**
 * Child of close.test.ts: starts a worker while close() drains another, prints how that went, and then
 * relies on nothing but an empty event loop to exit.
 */
import { open } from '../../src/index.ts';

const ferry = await open('memory:');
await ferry.send('busy', 1);
let started!: () => void;
const running = new Promise<void>((resolve) => {
  started = resolve;
});
ferry.work('busy', async () => {
  started();
  // Keeps close() draining while the second work() is tried.
  await new Promise((resolve) => setTimeout(resolve, 200));
});
await running;
const closing = ferry.close();
let refused = '';
try {
  ferry.work('late', async () => {});
} catch (error) {
  refused = `${(error as Error).name}: ${(error as Error).message}`;
}
await closing;
process.stdout.write(`${JSON.stringify({ refused })}\n`);
