/**
 * Webhook delivery latency: from an ack answered (its `completed` event committed) to the receiver holding
 * the signed POST, on one process with a local receiver (allow-private). Each signature is checked with the
 * `standardwebhooks` package.
 *
 *   npx tsx bench/webhooks.ts [--store memory:|sqlite:PATH|postgres://…] [--events 200] [--json]
 *
 * Events are made one at a time (the next after the previous one arrived), so the figure is the latency of a
 * lone event, not of a queue of deliveries behind each other.
 */
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';
import { Webhook } from 'standardwebhooks';
import { open } from '../src/index.ts';
import { testSchema } from '../test/support/postgres.ts';

const { values } = parseArgs({
  options: {
    store: { type: 'string', default: 'memory:' },
    events: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
  },
});
const N = Number(values.events);
const secret = `whsec_${Buffer.alloc(32, 42).toString('base64')}`;
const verifier = new Webhook(secret);

let arrived: ((id: string) => void) | undefined;
let verified = 0;
const receiver = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    const event = verifier.verify(body, req.headers as Record<string, string>) as { id: string };
    verified++;
    res.end();
    arrived?.(event.id);
  });
});
await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
const port = (receiver.address() as { port: number }).port;

const schema = values.store === 'postgres' ? await testSchema('bench_webhooks') : null;
const url = schema ? schema.url : (values.store as string);
const ferry = await open(url, { webhookAllowPrivate: true });
const queue = `bench-${Date.now()}`;
await ferry.putWebhook('bench', { url: `http://127.0.0.1:${port}/hook`, secret, queues: [queue] });

const latencies: number[] = [];
for (let i = 0; i < N + 10; i++) {
  await ferry.send(queue, { i });
  const [delivery] = await ferry.receive(queue, { wait: '5s' });
  if (!delivery) throw new Error('no delivery');
  const got = new Promise<number>((resolve) => {
    arrived = (id) => {
      if (id === delivery.id) resolve(performance.now());
    };
  });
  await ferry.ack(delivery);
  const t0 = performance.now();
  const t1 = await got;
  if (i >= 10) latencies.push(t1 - t0); // the first ten warm up connections and statements
}
await ferry.close();
receiver.close();
await schema?.drop();

latencies.sort((a, b) => a - b);
const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] as number;
const report = {
  store: schema ? 'postgres' : url,
  events: N,
  p50ms: at(0.5),
  p90ms: at(0.9),
  p99ms: at(0.99),
  verified,
};
if (values.json) console.log(JSON.stringify(report));
else
  console.log(
    `webhook latency on ${report.store}, ${N} events: p50 ${report.p50ms.toFixed(1)} ms, p90 ${report.p90ms.toFixed(1)} ms, p99 ${report.p99ms.toFixed(1)} ms; ${verified} signatures verified`,
  );
