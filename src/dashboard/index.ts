/**
 * The dashboard: `GET /` renders the page on the server, and `/dashboard/*` serves its small ES modules and
 * stylesheet as they are (no build step). The browser code talks to the public HTTP API (`/v1`) only.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Ferry, QueueStats } from '../core/types.ts';
import { renderPage } from './page.ts';

const ASSET_BASE = '/dashboard';
const ASSETS: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'api.js': 'text/javascript; charset=utf-8',
  'chart.js': 'text/javascript; charset=utf-8',
  'dom.js': 'text/javascript; charset=utf-8',
  'views.js': 'text/javascript; charset=utf-8',
  'message.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
  'icon.svg': 'image/svg+xml',
};

/** No inline script or style, no other origin: data rendered as markup could not run even if it slipped through. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self' data:",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * The assets sit next to this file in `src/`; `tsc` copies no `.js`/`.css` into `dist/`, so the built package
 * finds them in its shipped `src/` folder instead.
 */
function assetsDir(): string {
  const here = new URL('./assets/', import.meta.url);
  if (existsSync(here)) return fileURLToPath(here);
  return fileURLToPath(new URL('../../src/dashboard/assets/', import.meta.url));
}

function secure(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', CONTENT_SECURITY_POLICY)
    .header('x-content-type-options', 'nosniff')
    .header('referrer-policy', 'no-referrer')
    .header('x-frame-options', 'DENY');
}

/** A Fastify plugin: mount it with `startServer({ plugins: [dashboard] })`. */
export async function dashboard(app: FastifyInstance, _ferry: Ferry): Promise<void> {
  const dir = assetsDir();
  const cache = new Map<string, Buffer>();

  app.get('/', async (_request, reply) => {
    // Asking the API itself, without credentials, respects whatever auth the server enforces: with tokens
    // on, the answer is 401 and the page renders no data until the browser signs in.
    const probe = await app.inject({ method: 'GET', url: '/v1/queues' });
    let queues: QueueStats[] | null = null;
    if (probe.statusCode === 200) queues = (probe.json() as { queues: QueueStats[] }).queues;
    secure(reply).header('cache-control', 'no-store').type('text/html; charset=utf-8');
    return renderPage(queues, ASSET_BASE);
  });

  // Browsers ask for /favicon.ico whatever the page links; an empty answer they may cache, rather than a
  // 404 logged as refused at every visit. The page links its icon from the assets.
  app.get('/favicon.ico', async (_request, reply) =>
    reply.code(204).header('cache-control', 'public, max-age=604800').send(),
  );

  app.get<{ Params: { file: string } }>(`${ASSET_BASE}/:file`, async (request, reply) => {
    const { file } = request.params;
    const type = ASSETS[file];
    if (!type) return reply.code(404).type('text/plain').send('not found');
    let body = cache.get(file);
    if (!body) {
      body = await readFile(`${dir}/${file}`);
      cache.set(file, body);
    }
    return secure(reply).header('cache-control', 'no-cache').type(type).send(body);
  });
}
