/**
 * The HTTP side of the raw limits: a server child (bench/peers/serve.ts) and a keep-alive `node:http`
 * client that keeps `concurrency` requests in flight, the same client for the bare server and for Ferry.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
/** The repository root: children run there, so `--import tsx` resolves from its node_modules. */
export const ROOT = join(here, '..', '..');
/** Where SQLite files go: on the same disk as the repository (gitignored), not a tmpfs. */
export const DATA = join(here, 'data');

/** `node --import tsx FILE ARGS…`: how a TypeScript child is started. */
export function tsArgs(file: string, args: string[] = []): string[] {
  return ['--import', 'tsx', file, ...args];
}

export interface ServerChild {
  url: string;
  close(): Promise<void>;
}

/** Starts bench/peers/serve.ts in a child and resolves once it prints its URL. */
export async function spawnServer(kind: 'bare' | 'ferry', store?: string): Promise<ServerChild> {
  mkdirSync(DATA, { recursive: true });
  const child: ChildProcess = spawn(process.execPath, tsArgs(join(here, 'serve.ts'), store ? [kind, store] : [kind]), {
    cwd: ROOT,
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const lines = createInterface({ input: child.stdout! });
  const url = await new Promise<string>((resolve, reject) => {
    lines.once('line', (line) => resolve((JSON.parse(line) as { url: string }).url));
    void exited.then((code) => reject(new Error(`the ${kind} server exited (${code}) before listening`)));
  });
  return {
    url,
    close: async () => {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`the ${kind} server exited with ${code}`);
    },
  };
}

export interface Load {
  /** Requests answered per second. */
  rate: number;
  /** Requests answered with the expected status (all of them, or the load throws). */
  ok: number;
}

/**
 * POSTs `n` requests (body from `body(i)`) to `url`, `concurrency` at a time over as many keep-alive
 * connections, after a warm-up of `warm` requests that opens them. Every answer must have `status`.
 */
export async function hammer(
  url: string,
  body: (i: number) => string,
  options: { n: number; concurrency: number; status: number; warm?: number },
): Promise<Load> {
  const agent = new Agent({ keepAlive: true, maxSockets: options.concurrency });
  const target = new URL(url);
  let bad = 0;
  let ok = 0;
  const one = (i: number) =>
    new Promise<void>((resolve, reject) => {
      const text = body(i);
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname + target.search,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) },
        },
        (res) => {
          if (res.statusCode === options.status) ok++;
          else bad++;
          res.resume();
          res.on('end', resolve);
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(text);
    });
  const run = async (from: number, count: number) => {
    let next = from;
    await Promise.all(
      Array.from({ length: options.concurrency }, async () => {
        while (next < from + count) await one(next++);
      }),
    );
  };
  try {
    const warm = options.warm ?? options.concurrency * 20;
    await run(-warm, warm);
    ok = 0;
    const t0 = performance.now();
    await run(0, options.n);
    const ms = performance.now() - t0;
    if (bad > 0 || ok !== options.n) {
      throw new Error(`count check failed: ${ok} of ${options.n} requests answered ${options.status}, ${bad} not`);
    }
    return { rate: (options.n / ms) * 1000, ok };
  } finally {
    agent.destroy();
  }
}
