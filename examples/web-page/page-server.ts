/**
 * Serves the page of this example, as your own web site would, on an origin of its own: the HTML, its script
 * and stylesheet from `public/`, `/config.json` (where the Ferry server is), and Ferry's browser client under
 * `/ferry/` (with its one dependency, `@opentelemetry/api`, under `/ferry/otel/`).
 *
 * The browser client is `src/client/index.ts` and the few modules it imports. A bundler would normally make
 * one file of it; to keep this example free of a build step, each module is compiled to JavaScript when the
 * browser asks for it (TypeScript's `transpileModule`: types erased, `./x.ts` imports rewritten to `./x.js`).
 * In your own project, serve the built package instead: `node_modules/ferry/dist/client/index.js`.
 */
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { extname, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const PUBLIC = fileURLToPath(new URL('./public/', import.meta.url));
const SOURCES = fileURLToPath(new URL('../../src/', import.meta.url));
const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
};

/** `dir/rest`, or null when `rest` would leave `dir` (`..`, absolute paths). */
function inside(dir: string, rest: string): string | null {
  const path = resolve(dir, rest);
  const rel = relative(dir, path);
  return rel && !rel.startsWith('..') && !rel.startsWith(sep) ? path : null;
}

const compiled = new Map<string, string>();
/** The ES modules of `@opentelemetry/api` (the client's one dependency), served under `/ferry/otel/`. */
const OTEL = fileURLToPath(new URL('../../node_modules/@opentelemetry/api/build/esm/', import.meta.url));

async function clientModule(rest: string): Promise<string | null> {
  // Only what the browser client imports: src/client, src/core, and the worker loop and tracing helpers it
  // shares with the engine.
  if (!/^(client\/[a-z-]+|core\/[a-z-]+|engine\/(worker|tracing))\.js$/.test(rest)) return null;
  const path = inside(SOURCES, rest.replace(/\.js$/, '.ts'));
  if (!path) return null;
  let code = compiled.get(path);
  if (code === undefined) {
    const source = await readFile(path, 'utf8');
    code = ts
      .transpileModule(source, {
        fileName: path,
        compilerOptions: {
          target: ts.ScriptTarget.ES2022,
          module: ts.ModuleKind.ESNext,
          verbatimModuleSyntax: true,
          rewriteRelativeImportExtensions: true,
        },
      })
      .outputText.replaceAll("from '@opentelemetry/api'", "from '/ferry/otel/index.js'");
    compiled.set(path, code);
  }
  return code;
}

/**
 * A module of `@opentelemetry/api`'s ES build. Its imports name files without `.js` (`./context-api`), as
 * bundlers accept and browsers do not: such a path is answered with the file it names.
 */
async function otelModule(rest: string): Promise<string | null> {
  if (!/^[A-Za-z0-9_/-]+(\.js)?$/.test(rest)) return null;
  const path = inside(OTEL, rest.endsWith('.js') ? rest : `${rest}.js`);
  return path ? readFile(path, 'utf8').catch(() => null) : null;
}

export interface PageServer {
  url: string;
  server: Server;
}

/**
 * Starts the page's server on `port` (0: any free one). `ferryUrl()` is read on each request for
 * `/config.json`, so the Ferry server may start after this one (it needs this origin for its CORS list).
 */
export async function startPageServer(port: number, ferryUrl: () => string): Promise<PageServer> {
  const server = createServer(async (request, response) => {
    try {
      const { pathname } = new URL(request.url ?? '/', 'http://localhost');
      let body: string | Buffer | null = null;
      let type = 'text/javascript; charset=utf-8';
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        response.writeHead(405, { allow: 'GET, HEAD' }).end();
        return;
      }
      if (pathname === '/config.json') {
        body = JSON.stringify({ ferryUrl: ferryUrl() });
        type = 'application/json';
      } else if (pathname.startsWith('/ferry/otel/')) {
        body = await otelModule(pathname.slice('/ferry/otel/'.length));
      } else if (pathname.startsWith('/ferry/')) {
        body = await clientModule(pathname.slice('/ferry/'.length));
      } else {
        const path = inside(PUBLIC, pathname === '/' ? 'index.html' : pathname.slice(1));
        const known = path ? TYPES[extname(path)] : undefined;
        if (path && known) {
          body = await readFile(path).catch(() => null);
          type = known;
        }
      }
      if (body === null) {
        response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
        return;
      }
      response.writeHead(200, {
        'content-type': type,
        'cache-control': 'no-cache',
        'x-content-type-options': 'nosniff',
        // The page may run its own scripts and call the Ferry server, nothing else.
        'content-security-policy': `default-src 'self'; img-src 'self' data:; connect-src 'self' ${ferryUrl()}; base-uri 'none'; frame-ancestors 'none'`,
      });
      response.end(request.method === 'HEAD' ? undefined : body);
    } catch (error) {
      response.writeHead(500, { 'content-type': 'text/plain' }).end(String(error));
    }
  });
  await new Promise<void>((done, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', () => done());
  });
  const address = server.address();
  const bound = typeof address === 'object' && address ? address.port : port;
  return { url: `http://127.0.0.1:${bound}`, server };
}
