/**
 * Ferry's HTTP server against the floor under it: a bare `node:http` server answering `{}`, hit by the same
 * keep-alive client at the same concurrency as Ferry's `POST /v1/queues/:queue/messages` (single sends on
 * a SQLite store, fsync on). Each server runs in a child process, the client here. Counts are checked:
 * every answer must be 200 (bare) or 201 (Ferry), and the store must hold every message sent.
 *
 *   npx tsx bench/http.ts                         3 runs, a table and the ratio
 *   npx tsx bench/http.ts --runs 5 --json         machine-readable
 *   HTTP_REQUESTS=2000 npx tsx bench/http.ts      a smoke run (default 20,000 requests; HTTP_CONCURRENCY 32)
 *
 * Also measured: sends through the SDK (`connect()`, which uses fetch) at the same concurrency
 * (HTTP_SDK_REQUESTS, default 5,000, at most HTTP_REQUESTS).
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { connect } from '../src/client/index.ts';
import { DATA, hammer, spawnServer } from './peers/http-load.ts';

const positive = (name: string, fallback: number): number => {
  const text = process.env[name];
  if (text === undefined || text === '') return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer; got ${JSON.stringify(text)}`);
  return n;
};

const HTTP_FIGURES = {
  bare: 'bare node:http, POST answered {}',
  send: 'Ferry POST …/messages (single send)',
  sdk: 'Ferry SDK connect().send',
} as const;
type Key = keyof typeof HTTP_FIGURES;

/** One run: bare server, then Ferry (or the other way round on odd runs), each in a fresh child. */
async function httpRun(
  run: number,
  n = positive('HTTP_REQUESTS', 20_000),
  concurrency = positive('HTTP_CONCURRENCY', 32),
): Promise<Record<Key, number>> {
  const figures = {} as Record<Key, number>;
  const bare = async () => {
    const server = await spawnServer('bare');
    try {
      figures.bare = (await hammer(server.url, (i) => `{"payload":{"i":${i}}}`, { n, concurrency, status: 200 })).rate;
    } finally {
      await server.close();
    }
  };
  const ferry = async () => {
    const file = join(DATA, `http-${process.pid}-${run}.db`);
    const server = await spawnServer('ferry', `sqlite:${file}`);
    try {
      const warm = concurrency * 20;
      const queue = 'http-bench';
      const url = `${server.url}/v1/queues/${queue}/messages`;
      figures.send = (await hammer(url, (i) => `{"payload":{"i":${i}}}`, { n, concurrency, status: 201, warm })).rate;
      const client = await connect(server.url);
      try {
        const stats = await client.stats(queue);
        if (stats.waiting !== n + warm) {
          throw new Error(`count check failed: ${n + warm} sends answered 201, the store has ${stats.waiting}`);
        }
        const sdkQueue = 'http-bench-sdk';
        const m = Math.min(n, positive('HTTP_SDK_REQUESTS', 5000));
        const sendAll = async (q: string, count: number) => {
          let next = 0;
          await Promise.all(
            Array.from({ length: concurrency }, async () => {
              while (next < count) await client.send(q, { i: next++ });
            }),
          );
        };
        // fetch opens its connections and warms up on the first few hundred requests, like hammer's warm-up.
        await sendAll(`${sdkQueue}-warm`, warm);
        const t0 = performance.now();
        await sendAll(sdkQueue, m);
        figures.sdk = (m / (performance.now() - t0)) * 1000;
        const sdkStats = await client.stats(sdkQueue);
        if (sdkStats.waiting !== m) throw new Error(`count check failed: SDK sent ${m}, store has ${sdkStats.waiting}`);
      } finally {
        await client.close();
      }
    } finally {
      await server.close();
      for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true });
    }
  };
  for (const step of run % 2 ? [bare, ferry] : [ferry, bare]) await step();
  return figures;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { runs: { type: 'string', default: '3' }, json: { type: 'boolean', default: false } },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer; got ${values.runs}`);
  const all: Record<Key, number>[] = [];
  for (let run = 1; run <= runs; run++) {
    all.push(await httpRun(run));
    if (!values.json) process.stderr.write(`run ${run}/${runs}: ${JSON.stringify(all.at(-1))}\n`);
  }
  const keys = Object.keys(HTTP_FIGURES) as Key[];
  const figures = Object.fromEntries(keys.map((k) => [k, median(all.map((r) => r[k]))])) as Record<Key, number>;
  const ratio = figures.send / figures.bare;
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ system: 'http', figures, runs: all, ratio })}\n`);
    return;
  }
  const fmt = (v: number) => Math.round(v).toLocaleString('en-US');
  const lines = [
    `HTTP, ${runs} run(s), ${positive('HTTP_REQUESTS', 20_000)} requests, concurrency ${positive('HTTP_CONCURRENCY', 32)}, node ${process.version}`,
    '',
    '| measurement | unit | median | min | max |',
    '|---|---|---:|---:|---:|',
    ...keys.map((k) => {
      const xs = all.map((r) => r[k]);
      return `| ${HTTP_FIGURES[k]} | req/s | **${fmt(figures[k])}** | ${fmt(Math.min(...xs))} | ${fmt(Math.max(...xs))} |`;
    }),
    '',
    `Ferry single sends / bare node:http: ${(ratio * 100).toFixed(0)}% (target ≥ 60%: ${ratio >= 0.6 ? 'met' : 'not met'})`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
}

main().catch((error) => {
  process.stderr.write(`${error?.stack ?? error}\n`);
  process.exit(1);
});
