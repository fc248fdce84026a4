/**
 * Starts the three parts of the example and prints the page's address:
 *   - a Ferry server (the HTTP API and the dashboard), letting the page's origin in through CORS;
 *   - the page's own web server (another origin, as your site would be);
 *   - one worker process, which reaches the Ferry server over HTTP.
 *
 *   npx tsx examples/web-page/launch.ts
 *
 * PORT: the page's port (default: any free one). FERRY_PORT: the Ferry server's (default: any free one).
 * FERRY_STORE: the store (default: a SQLite file in a fresh temporary folder, deleted on exit).
 * Ctrl-C stops everything.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { dashboard } from '../../src/dashboard/index.ts';
import { startServer } from '../../src/server/index.ts';
import { startPageServer } from './page-server.ts';

const port = (name: string) => {
  const value = Number(process.env[name] ?? 0);
  if (!Number.isInteger(value) || value < 0 || value > 65535) throw new Error(`${name} must be a port number`);
  return value;
};

const tempDir = process.env.FERRY_STORE ? null : await mkdtemp(join(tmpdir(), 'ferry-web-page-'));
const store = process.env.FERRY_STORE ?? `sqlite:${join(tempDir as string, 'ferry.db')}`;

// The page's server first: the Ferry server needs its origin for CORS, and it needs the Ferry server's URL.
let ferryUrl = '';
const page = await startPageServer(port('PORT'), () => ferryUrl);
const ferry = await startServer({
  store,
  host: '127.0.0.1',
  port: port('FERRY_PORT'),
  // Without this, the browser would refuse to let the page read the API's answers (another origin).
  cors: [page.url],
  logger: { level: 'warn' },
  plugins: [dashboard],
});
ferryUrl = ferry.url;

// The worker runs as its own process, with the same Node flags as this one (tsx's loader, when run by tsx).
const worker: ChildProcess = spawn(
  process.execPath,
  [...process.execArgv, fileURLToPath(new URL('./worker.ts', import.meta.url))],
  { env: { ...process.env, FERRY_URL: ferry.url }, stdio: ['ignore', 'inherit', 'inherit'] },
);
const workerExited = new Promise<void>((done) => worker.once('exit', () => done()));

console.log(`store:     ${store}`);
console.log(`ferry:     ${ferry.url}  (the dashboard is at ${ferry.url}/)`);
console.log(`page:      ${page.url}/`);
console.log(`Open ${page.url}/ in your browser; Ctrl-C stops.`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  worker.kill('SIGTERM');
  await workerExited;
  await ferry.close();
  const pageClosed = new Promise<void>((done) => page.server.close(() => done()));
  page.server.closeAllConnections();
  await pageClosed;
  if (tempDir) await rm(tempDir, { recursive: true, force: true });
  console.log('stopped');
}

process.once('SIGINT', () => void stop().then(() => process.exit(0)));
process.once('SIGTERM', () => void stop().then(() => process.exit(0)));
// If the worker dies on its own, say so and stop: the page would wait forever for results.
void workerExited.then(() => {
  if (stopping) return;
  console.error('the worker exited; stopping');
  void stop().then(() => process.exit(1));
});
