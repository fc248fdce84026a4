/**
 * What one JSON request costs the HTTP client in Node: `fetch` (Node's global) against undici's `request`,
 * which `connect()` uses in Node when no `fetch` is given (src/client/http.ts). The same POST of a single
 * send to a `ferry serve --store memory:` child process, from 1 and 8 loops at once, alternated, two rounds;
 * prints requests per second and this process's CPU per request.
 *
 *   npx tsx bench/client-transport.ts
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';

const CLI = fileURLToPath(new URL('../src/cli/main.ts', import.meta.url));
const server = spawn(
  process.execPath,
  ['--import', 'tsx', CLI, 'serve', '--store', 'memory:', '--port', '0', '--json', '--log-level', 'warn'],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const first: string = await new Promise((resolve) =>
  createInterface({ input: server.stdout as NodeJS.ReadableStream }).once('line', resolve),
);
const url = `${(JSON.parse(first) as { url: string }).url}/v1/queues/bench/messages`;
const body = JSON.stringify({ payload: { a: 1 } });
const headers = { 'content-type': 'application/json', accept: 'application/json' };

const ways: [string, () => Promise<unknown>][] = [
  ['fetch', async () => (await fetch(url, { method: 'POST', headers, body })).text()],
  ['undici request', async () => (await request(url, { method: 'POST', headers, body })).body.text()],
];
try {
  for (let round = 1; round <= 2; round++) {
    for (const [name, once] of ways) {
      for (const loops of [1, 8]) {
        const cpu0 = process.cpuUsage();
        const t0 = performance.now();
        let n = 0;
        await Promise.all(
          Array.from({ length: loops }, async () => {
            while (performance.now() - t0 < 1500) {
              await once();
              n++;
            }
          }),
        );
        const cpu = process.cpuUsage(cpu0);
        const rate = Math.round((n / (performance.now() - t0)) * 1000);
        const us = Math.round((cpu.user + cpu.system) / n);
        process.stdout.write(
          `round ${round}  ${name.padEnd(15)} ${loops} at once: ${rate} requests/s, ${us} µs CPU each\n`,
        );
      }
    }
  }
} finally {
  server.kill();
}
