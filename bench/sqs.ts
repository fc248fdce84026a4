/**
 * The SQS port against the HTTP API, same server, same run: the same work through the AWS SDK
 * (`@aws-sdk/client-sqs`, JSON protocol) and through `connect()`, each at the same concurrency.
 *
 *   send      SendMessage                              vs  connect().send
 *   batch     SendMessageBatch of 10                   vs  connect().sendBatch of 10
 *   process   ReceiveMessage (10) + DeleteMessageBatch vs  connect().receive (max 10) + an ack each
 *   raw send  SendMessage vs POST …/messages by one bare keep-alive client: the servers' own cost, without
 *             the AWS SDK's client-side work (middleware, endpoint rules, signing) or connect()'s
 *
 * The server is `ferry serve --sqs-port` in a child process, so client and server never share an event loop;
 * its store is `memory:` by default (`--store sqlite` for a file with fsync on, `sqlite-normal` without), so
 * the figures show what each face costs rather than the disk. Counts are checked after every workload.
 * Target: SQS ≥ 0.8× the HTTP API. Beside each rate, the CPU time per message of each process (the bench
 * as client, the server): on a loaded machine the rates swing, the CPU costs much less, and they tell
 * which side a gap is on.
 *
 *   npx tsx bench/sqs.ts                        3 runs, a table of medians and ratios
 *   npx tsx bench/sqs.ts --runs 1 --json        machine-readable
 *   npx tsx bench/sqs.ts --store sqlite         on a SQLite file, fsync on
 *   npx tsx bench/sqs.ts --only process         some workloads only (comma-separated), e.g. to profile one
 *   node --cpu-prof --cpu-prof-dir P --import tsx bench/sqs.ts --only send --profile P
 *                                               CPU profiles of the bench (client) and the server into P,
 *                                               with phases-N.json: each workload's start and end on the
 *                                               profiles' clock (µs), to cut them by phase
 *   SQS_MESSAGES=2000 npx tsx bench/sqs.ts      a smoke run (default 10,000 messages; SQS_CONCURRENCY 16)
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { connect } from '../src/client/index.ts';
import type { Ferry } from '../src/core/types.ts';
import { DATA, ROOT, tsArgs } from './peers/http-load.ts';

const positive = (name: string, fallback: number): number => {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 10) throw new Error(`${name} must be an integer ≥ 10; got ${JSON.stringify(text)}`);
  return n;
};
const N = positive('SQS_MESSAGES', 10_000);
const C = positive('SQS_CONCURRENCY', 16);

const WORKLOADS = {
  send: 'single sends',
  batch: 'batches of 10',
  process: 'receive 10 + delete/ack',
  raw: 'single sends, bare client',
} as const;
type Workload = keyof typeof WORKLOADS;
type Face = 'http' | 'sqs';
/** Messages per second, and CPU time per message (µs) of the bench process (client) and of the server. */
interface Figure {
  rate: number;
  client: number;
  server: number;
}
type Figures = Record<Workload, Record<Face, Figure>>;

interface Server {
  url: string;
  sqsUrl: string;
  /** The server's CPU time so far (user + system, every thread), in µs. */
  cpu(): number;
  close(): Promise<void>;
}

async function serve(store: string, profile: string | undefined): Promise<Server> {
  mkdirSync(DATA, { recursive: true });
  const args = ['serve', '--store', store, '--port', '0', '--sqs-port', '0', '--json', '--log-level', 'silent'];
  const prof = profile === undefined ? [] : ['--cpu-prof', '--cpu-prof-dir', profile];
  const child: ChildProcess = spawn(process.execPath, [...prof, ...tsArgs(join(ROOT, 'src/cli/main.ts'), args)], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const line = await new Promise<string>((resolve, reject) => {
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once('line', resolve);
    void exited.then((code) => reject(new Error(`ferry serve exited (${code}) before listening`)));
  });
  const { url, sqsUrl } = JSON.parse(line) as { url: string; sqsUrl: string };
  return {
    url,
    sqsUrl,
    cpu() {
      // Fields 14 and 15 of /proc/PID/stat, after the command name in parentheses, in clock ticks (100 Hz).
      const stat = readFileSync(`/proc/${child.pid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      return (Number(fields[11]) + Number(fields[12])) * 10_000;
    },
    async close() {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`ferry serve exited with ${code}`);
    },
  };
}

/** Runs `step` from `workers` loops until `total` units are claimed; answers units per second. */
async function timed(total: number, per: number, step: (i: number) => Promise<number>): Promise<number> {
  let next = 0;
  let done = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: C }, async () => {
      while (next < total) {
        const i = next;
        next += per;
        // Not `done += await …`: that reads `done` before the await and loses the other loops' counts.
        const n = await step(i);
        done += n;
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  return done / seconds;
}

/** One POST over a keep-alive agent; answers the status. */
function post(agent: Agent, url: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function check(ferry: Ferry, queue: string, field: 'waiting' | 'completed', expected: number): Promise<void> {
  const stats = await ferry.stats(queue);
  if (stats[field] !== expected)
    throw new Error(`count check failed: ${queue} has ${stats[field]} ${field}, expected ${expected}`);
}

async function drainHttp(ferry: Ferry, queue: string, total: number): Promise<number> {
  let left = total;
  return timed(total, 10, async () => {
    const got = await ferry.receive(queue, { max: 10, wait: left > 0 ? 1000 : 0 });
    await Promise.all(got.map((d) => ferry.ack(d)));
    left -= got.length;
    return got.length;
  });
}

async function drainSqs(sqs: SQSClient, url: string, total: number): Promise<number> {
  let left = total;
  return timed(total, 10, async () => {
    const got = await sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: left > 0 ? 1 : 0 }),
    );
    const messages = got.Messages ?? [];
    if (messages.length > 0) {
      const deleted = await sqs.send(
        new DeleteMessageBatchCommand({
          QueueUrl: url,
          Entries: messages.map((m, k) => ({ Id: `d${k}`, ReceiptHandle: m.ReceiptHandle })),
        }),
      );
      if ((deleted.Failed ?? []).length > 0)
        throw new Error(`DeleteMessageBatch failed: ${JSON.stringify(deleted.Failed)}`);
    }
    left -= messages.length;
    return messages.length;
  });
}

async function run(index: number, storeKind: string, only: Workload[], profile?: string): Promise<Figures> {
  const file = join(DATA, `sqs-${process.pid}-${index}.db`);
  // Without fsync the store is no bottleneck, so the figures show what each face itself costs.
  const server = await serve(
    storeKind === 'memory'
      ? 'memory:'
      : storeKind === 'sqlite'
        ? `sqlite:${file}`
        : `sqlite:${file}?synchronous=normal`,
    profile,
  );
  const ferry = await connect(server.url);
  const sqs = new SQSClient({
    endpoint: server.sqsUrl,
    region: 'us-east-1',
    credentials: { accessKeyId: 'AKIDBENCH', secretAccessKey: 'bench' },
    maxAttempts: 1,
  });
  const figures = { send: {}, batch: {}, process: {}, raw: {} } as Figures;
  const phases: { workload: Workload; face: Face; start: number; end: number }[] = [];
  const agent = new Agent({ keepAlive: true, maxSockets: C });
  try {
    const url = async (name: string) =>
      (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl as string;
    // Warm both faces: connections, JIT, the SDK's middleware.
    const warmUrl = await url('warm');
    await timed(C * 20, 1, async () => {
      await sqs.send(new SendMessageCommand({ QueueUrl: warmUrl, MessageBody: 'w' }));
      await ferry.send('warm', 'w');
      return 1;
    });
    const body = (i: number) => JSON.stringify({ i, to: `user-${i}@example.com` });
    const sendUrl = await url('s-send');
    const batchUrl = await url('s-batch');
    const rawUrl = await url('s-raw');
    const amz = { 'content-type': 'application/x-amz-json-1.0', 'x-amz-target': 'AmazonSQS.SendMessage' };
    // Each workload runs on both faces back to back, so a load swing on a shared machine hits both alike.
    const steps: Record<Workload, Record<Face, () => Promise<number>>> = {
      send: {
        http: async () => {
          const rate = await timed(N, 1, async (i) => {
            await ferry.send('h-send', body(i));
            return 1;
          });
          await check(ferry, 'h-send', 'waiting', N);
          return rate;
        },
        sqs: async () => {
          const rate = await timed(N, 1, async (i) => {
            await sqs.send(new SendMessageCommand({ QueueUrl: sendUrl, MessageBody: body(i) }));
            return 1;
          });
          await check(ferry, 's-send', 'waiting', N);
          return rate;
        },
      },
      batch: {
        http: async () => {
          const rate = await timed(N, 10, async (i) => {
            await ferry.sendBatch(
              'h-batch',
              Array.from({ length: 10 }, (_, k) => ({ payload: body(i + k) })),
            );
            return 10;
          });
          await check(ferry, 'h-batch', 'waiting', N);
          return rate;
        },
        sqs: async () => {
          const rate = await timed(N, 10, async (i) => {
            const entries = Array.from({ length: 10 }, (_, k) => ({ Id: `e${k}`, MessageBody: body(i + k) }));
            const sent = await sqs.send(new SendMessageBatchCommand({ QueueUrl: batchUrl, Entries: entries }));
            if ((sent.Failed ?? []).length > 0)
              throw new Error(`SendMessageBatch failed: ${JSON.stringify(sent.Failed)}`);
            return 10;
          });
          await check(ferry, 's-batch', 'waiting', N);
          return rate;
        },
      },
      process: {
        http: async () => {
          const rate = await drainHttp(ferry, 'h-batch', N);
          await check(ferry, 'h-batch', 'completed', N);
          return rate;
        },
        sqs: async () => {
          const rate = await drainSqs(sqs, batchUrl, N);
          await check(ferry, 's-batch', 'completed', N);
          return rate;
        },
      },
      raw: {
        http: async () => {
          const target = `${server.url}/v1/queues/h-raw/messages`;
          const rate = await timed(N, 1, async (i) => {
            const status = await post(
              agent,
              target,
              { 'content-type': 'application/json' },
              JSON.stringify({ payload: body(i) }),
            );
            if (status !== 201) throw new Error(`POST …/messages answered ${status}`);
            return 1;
          });
          await check(ferry, 'h-raw', 'waiting', N);
          return rate;
        },
        sqs: async () => {
          const rate = await timed(N, 1, async (i) => {
            const status = await post(
              agent,
              server.sqsUrl,
              amz,
              JSON.stringify({ QueueUrl: rawUrl, MessageBody: body(i) }),
            );
            if (status !== 200) throw new Error(`SendMessage answered ${status}`);
            return 1;
          });
          await check(ferry, 's-raw', 'waiting', N);
          return rate;
        },
      },
    };
    // Alternate which face goes first, so neither always meets the warmer (or fuller) store.
    const order: Face[] = index % 2 ? ['http', 'sqs'] : ['sqs', 'http'];
    if (only.includes('process') && !only.includes('batch')) {
      // `process` drains what `batch` sent: fill both queues untimed.
      for (let i = 0; i < N; i += 10) {
        const messages = Array.from({ length: 10 }, (_, k) => ({ payload: body(i + k) }));
        await Promise.all([ferry.sendBatch('h-batch', messages), ferry.sendBatch('s-batch', messages)]);
      }
    }
    for (const workload of only) {
      for (const face of order) {
        const start = process.hrtime.bigint();
        const client = process.cpuUsage();
        const server0 = server.cpu();
        const rate = await steps[workload][face]();
        const used = process.cpuUsage(client);
        figures[workload][face] = {
          rate,
          client: (used.user + used.system) / N,
          server: (server.cpu() - server0) / N,
        };
        // CLOCK_MONOTONIC in µs, the clock of V8's profile timestamps: a profile can be cut by phase.
        phases.push({ workload, face, start: Number(start / 1000n), end: Number(process.hrtime.bigint() / 1000n) });
      }
    }
  } finally {
    agent.destroy();
    sqs.destroy();
    await ferry.close();
    await server.close();
    for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    if (profile !== undefined) writeFileSync(join(profile, `phases-${index}.json`), JSON.stringify(phases));
  }
  return figures;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '3' },
      json: { type: 'boolean', default: false },
      store: { type: 'string', default: 'memory' },
      only: { type: 'string', default: Object.keys(WORKLOADS).join(',') },
      profile: { type: 'string' },
    },
  });
  const workloads = values.only.split(',') as Workload[];
  for (const w of workloads) {
    if (!(w in WORKLOADS)) throw new Error(`--only takes ${Object.keys(WORKLOADS).join(', ')}; got ${w}`);
  }
  if (!['memory', 'sqlite', 'sqlite-normal'].includes(values.store)) {
    throw new Error(`--store must be memory, sqlite (fsync on) or sqlite-normal; got ${values.store}`);
  }
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer; got ${values.runs}`);
  const all: Figures[] = [];
  for (let i = 1; i <= runs; i++) {
    all.push(await run(i, values.store, workloads, values.profile));
    if (!values.json) process.stderr.write(`run ${i}/${runs}: ${JSON.stringify(all.at(-1))}\n`);
  }
  const perFace = (w: Workload, face: Face) => ({
    rate: median(all.map((f) => f[w][face].rate)),
    client: median(all.map((f) => f[w][face].client)),
    server: median(all.map((f) => f[w][face].server)),
  });
  const result = Object.fromEntries(
    workloads.map((w) => {
      // The median of each run's ratio: on a shared machine the load drifts between runs, less within one.
      const ratio = median(all.map((f) => f[w].sqs.rate / f[w].http.rate));
      return [w, { http: perFace(w, 'http'), sqs: perFace(w, 'sqs'), ratio }];
    }),
  ) as Record<Workload, { http: Figure; sqs: Figure; ratio: number }>;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ system: 'sqs', messages: N, concurrency: C, result, runs: all })}\n`);
    return;
  }
  const fmt = (v: number) => Math.round(v).toLocaleString('en-US');
  const lines = [
    `SQS port vs HTTP API, ${runs} run(s), ${N} messages per workload, concurrency ${C}, store ${values.store}, node ${process.version}`,
    '',
    '| workload | HTTP API (connect) msgs/s | SQS port (AWS SDK) msgs/s | SQS / HTTP (median of runs) | client CPU µs/msg, HTTP / SQS | server CPU µs/msg, HTTP / SQS |',
    '|---|---:|---:|---:|---:|---:|',
    ...workloads.map((w) => {
      const { http, sqs, ratio } = result[w];
      return `| ${WORKLOADS[w]} | ${fmt(http.rate)} | ${fmt(sqs.rate)} | ${ratio.toFixed(2)}× ${ratio >= 0.8 ? '' : '(below 0.8×)'} | ${fmt(http.client)} / ${fmt(sqs.client)} | ${fmt(http.server)} / ${fmt(sqs.server)} |`;
    }),
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
