/**
 * A server in a process of its own, so the load and the server never share an event loop:
 *
 *   serve.ts bare             node:http answering `{}` to every request (after reading its body)
 *   serve.ts ferry STORE_URL  Ferry's `startServer` on that store, no request log
 *
 * Prints one line `{"url": …}` once listening; closes on SIGTERM or when stdin ends (its parent died).
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startServer } from '../../src/server/index.ts';

const [kind, store] = process.argv.slice(2);

async function bare(): Promise<{ url: string; close: () => Promise<void> }> {
  const body = Buffer.from('{}');
  const server = createServer((request, response) => {
    request.on('data', () => {});
    request.on('end', () => {
      response.writeHead(200, { 'content-type': 'application/json', 'content-length': body.length });
      response.end(body);
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function main(): Promise<void> {
  let running: { url: string; close: () => Promise<void> };
  if (kind === 'bare') running = await bare();
  else if (kind === 'ferry' && store)
    running = await startServer({ store, port: 0, logger: false, closeTimeoutMs: 2000 });
  else throw new Error('usage: serve.ts bare | serve.ts ferry STORE_URL');
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    running.close().then(
      () => process.exit(0),
      (error) => {
        process.stderr.write(`serve.ts: closing failed: ${error}\n`);
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.stdin.on('end', stop);
  process.stdin.resume();
  process.stdout.write(`${JSON.stringify({ url: running.url })}\n`);
}

main().catch((error) => {
  process.stderr.write(`serve.ts: ${error?.stack ?? error}\n`);
  process.exit(1);
});
