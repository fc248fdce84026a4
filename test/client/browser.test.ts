/**
 * The client in a real browser: headless Chromium loads a page (from another origin than the API, so CORS
 * and the Authorization header are exercised) that imports `ferry/client` as an ES module, sends a message
 * with `call()`; a worker in Node completes it; the page shows the result and the events it saw.
 * The client is bundled for `platform: 'browser'`, which fails on any `node:` import.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { build } from 'esbuild';
import type { Browser } from 'playwright-core';
import { connect } from '../../src/client/index.ts';
import type { Ferry, Worker } from '../../src/core/types.ts';
import { type RunningServer, startServer } from '../../src/server/index.ts';
import { CHROMIUM, launchBrowser } from '../support/browser.ts';

const TOKEN = 'browser-test-token-0123456789';

function page(api: string): string {
  return `<!doctype html><meta charset="utf-8"><title>ferry</title><pre id="out"></pre><pre id="events"></pre>
<script type="module">
  import { connect } from '/ferry-client.js';
  const out = document.getElementById('out');
  try {
    const ferry = await connect(${JSON.stringify(api)}, { token: ${JSON.stringify(TOKEN)} });
    const seen = [];
    const stream = ferry.events({ queue: 'resize' });
    (async () => { for await (const e of stream) { seen.push(e.type); document.getElementById('events').textContent = seen.join(','); } })();
    // Send once the stream is open: a stream opened after the message completed would start past its events.
    await stream.since();
    const reply = await ferry.call('resize', { width: 21 }, { timeout: '20s' });
    out.textContent = JSON.stringify(reply);
  } catch (error) {
    out.textContent = 'error: ' + error.name + ': ' + error.message;
  }
</script>`;
}

describe('the client in Chromium', () => {
  let api: RunningServer;
  let site: Server;
  let siteUrl: string;
  let browser: Browser;
  let nodeSide: Ferry;
  let worker: Worker;

  before(async () => {
    assert.ok(existsSync(CHROMIUM), `${CHROMIUM} is missing: apt-get update && apt-get install -y chromium`);
    const bundle = await build({
      entryPoints: ['src/client/index.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      target: 'es2022',
      write: false,
      logLevel: 'silent',
    });
    const code = bundle.outputFiles[0]?.text ?? '';
    site = createServer((req, res) => {
      if (req.url === '/ferry-client.js') {
        res.writeHead(200, { 'content-type': 'text/javascript' }).end(code);
      } else res.writeHead(200, { 'content-type': 'text/html' }).end(page(api.url));
    });
    await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    api = await startServer({ store: 'memory:', port: 0, logger: false, tokens: [TOKEN], cors: [siteUrl] });
    nodeSide = await connect(api.url, { token: TOKEN });
    worker = nodeSide.work<{ width: number }>('resize', async (job) => ({ width: job.payload.width * 2, by: 'node' }));
    browser = await launchBrowser();
  });

  after(async () => {
    await browser?.close();
    await worker?.close();
    await nodeSide?.close();
    await api?.close();
    await new Promise((resolve) => site?.close(resolve));
  });

  it('a page sends a message, a Node worker completes it, the page shows the result', { timeout: 40_000 }, async () => {
    const tab = await browser.newPage();
    const errors: string[] = [];
    tab.on('pageerror', (e) => errors.push(e.message));
    await tab.goto(siteUrl);
    await tab.waitForFunction(() => document.getElementById('out')?.textContent !== '', undefined, { timeout: 30_000 });
    const out = await tab.textContent('#out');
    assert.deepEqual(JSON.parse(String(out)), { width: 42, by: 'node' }, `page says ${out}; errors: ${errors}`);
    await tab.waitForFunction(() => document.getElementById('events')?.textContent?.includes('completed'), undefined, {
      timeout: 10_000,
    });
    assert.match(String(await tab.textContent('#events')), /completed/);
    assert.deepEqual(errors, []);
  });
});
