/**
 * A child process of event-feed.test.ts: `URL QUEUE` follows the queue's events and prints each as a JSON
 * line; SIGTERM closes the stream. Nothing else keeps this process alive: only the waiting iterator does.
 */
import { open } from '../../src/index.ts';

const [url, queue] = process.argv.slice(2) as [string, string];
const ferry = await open(url);
const stream = ferry.events({ queue });
process.once('SIGTERM', () => stream.close());
process.stdout.write(`${JSON.stringify({ since: await stream.since() })}\n`);
for await (const event of stream) process.stdout.write(`${JSON.stringify(event)}\n`);
await ferry.close();
process.stdout.write('closed\n');
