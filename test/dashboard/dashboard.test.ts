/** The dashboard in headless Chromium, against a server over an in-process `memory:` Ferry. */
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { Ferry } from '../../src/core/types.ts';
import { dashboard } from '../../src/dashboard/index.ts';
import { open } from '../../src/index.ts';
import { startServer } from '../../src/server/index.ts';
import { launchBrowser } from '../support/browser.ts';

const ARTIFACTS = new URL('../../.artifacts/', import.meta.url);
mkdirSync(ARTIFACTS, { recursive: true });
const shot = (page: Page, name: string) =>
  page.screenshot({ path: new URL(`${name}.png`, ARTIFACTS).pathname, fullPage: true });

const XSS = [
  '<script>window.__pwned = 1</script>',
  '"><img src=x onerror="window.__pwned=2">',
  "'><svg onload=window.__pwned=3>",
];

let browser: Browser;
let ferry: Ferry;
let server: { url: string; close(): Promise<void> };

before(async () => {
  browser = await launchBrowser();
  ferry = await open('memory:');
  server = await startServer({ ferry, port: 0, plugins: [dashboard], logger: false });
});

after(async () => {
  await browser?.close();
  await server?.close();
});

/** A fresh page that fails the test on any dialog (alert() from an injected script would open one). */
async function newPage(width = 1280, height = 860): Promise<{ page: Page; dialogs: string[]; errors: string[] }> {
  const page = await browser.newPage({ viewport: { width, height } });
  const dialogs: string[] = [];
  const errors: string[] = [];
  page.on('dialog', (dialog) => {
    dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (error) => errors.push(error.message));
  return { page, dialogs, errors };
}

/** Text nodes reading exactly "null": a null child that slipped into the DOM's own append(). */
const strayNulls = (page: Page) =>
  page.evaluate(() => {
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    let count = 0;
    while (walker.nextNode()) if (walker.currentNode.textContent === 'null') count++;
    return count;
  });

const completedCell = (page: Page, queue: string) =>
  page.locator(`#queues tr[data-queue="${queue}"] td[data-col="completed"]`);

describe('dashboard', () => {
  it('serves the page with a strict CSP and no inline script', async () => {
    const response = await fetch(`${server.url}/`);
    const csp = response.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    const html = await response.text();
    assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, 'every script is an external module');
    const asset = await fetch(`${server.url}/dashboard/app.js`);
    assert.equal(asset.status, 200);
    assert.match(asset.headers.get('content-type') ?? '', /javascript/);
    assert.equal((await fetch(`${server.url}/dashboard/../../package.json`)).status, 404);
  });

  it('a visit asks for nothing that is refused, its icon included', async () => {
    assert.equal((await fetch(`${server.url}/favicon.ico`)).status, 204);
    const { page, errors } = await newPage();
    const refused: string[] = [];
    page.on('response', (response) => {
      if (response.status() >= 400) refused.push(`${response.status()} ${response.url()}`);
    });
    await page.goto(`${server.url}/`);
    await page.locator('#live.on').waitFor({ timeout: 10_000 });
    const icon = await page.evaluate(async () => {
      const link = document.querySelector<HTMLLinkElement>('link[rel="icon"]');
      return link ? (await fetch(link.href)).headers.get('content-type') : null;
    });
    assert.equal(icon, 'image/svg+xml');
    assert.deepEqual(refused, []);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('shows queues, and the counts and the chart update live as messages complete', async () => {
    const queue = `live-${Date.now()}`;
    for (let i = 0; i < 3; i++) await ferry.send(queue, { i });
    const { page, errors } = await newPage();
    await page.goto(`${server.url}/`);
    await page.locator('#live.on').waitFor({ timeout: 10_000 });
    assert.equal(await completedCell(page, queue).textContent(), '0');
    const before = Number(await page.locator('figure.throughput').getAttribute('data-completed'));

    const worker = ferry.work(queue, (job) => ({ done: (job.payload as { i: number }).i }));
    await page.waitForFunction(
      (q) => document.querySelector(`#queues tr[data-queue="${q}"] td[data-col="completed"]`)?.textContent === '3',
      queue,
      { timeout: 10_000 },
    );
    await worker.close();
    await page.waitForFunction(
      (n) => Number(document.querySelector('figure.throughput')?.getAttribute('data-completed')) >= n + 3,
      before,
      { timeout: 5000 },
    );
    assert.ok((await page.locator('svg rect.bar.completed').count()) >= 1, 'a completed bar is drawn');
    assert.ok((await page.locator('#events li.completed').count()) >= 3, 'the live events list shows the completions');
    await shot(page, 'overview');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('draws the minutes before the page opened from the event log at load, and finds a message by id', async () => {
    // A server of its own, so the log holds exactly this test's events, and nothing happens after the page
    // opens: the chart must fill from history alone.
    const own = await open('memory:');
    const ownServer = await startServer({ ferry: own, port: 0, plugins: [dashboard], logger: false });
    try {
      const queue = 'history';
      const first = await own.send(queue, 'a');
      await own.send(queue, 'b');
      for (const d of await own.receive(queue, { max: 2 })) await own.ack(d, 'ok');
      const { page, errors } = await newPage();
      await page.goto(`${ownServer.url}/`);
      await page.locator('#live.on').waitFor({ timeout: 10_000 });
      await page.waitForFunction(
        () => document.querySelector('figure.throughput')?.getAttribute('data-completed') === '2',
        undefined,
        { timeout: 10_000 },
      );
      assert.equal(await page.locator('figure.throughput').getAttribute('data-completed'), '2', 'counted once');

      await page.fill('#lookup-id', first.id);
      await page.press('#lookup-id', 'Enter');
      await page.locator(`#message[data-id="${first.id}"] .badge[data-state="completed"]`).waitFor({ timeout: 5000 });
      assert.equal(await page.locator('#message pre.result').textContent(), '"ok"');
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      await ownServer.close();
    }
  });

  it('retrying a dead message from its page makes it waiting on screen', async () => {
    const queue = `dead-${Date.now()}`;
    const { id } = await ferry.send(queue, { doomed: true }, { maxAttempts: 1 });
    const [delivery] = await ferry.receive(queue);
    await ferry.nack(delivery!, { error: { message: 'smtp down' } });
    const { page, errors } = await newPage();

    await page.goto(`${server.url}/#/queues/${queue}?state=dead`);
    const row = page.locator(`tr[data-id="${id}"]`);
    await row.waitFor();
    assert.equal(await row.getAttribute('data-state'), 'dead');
    assert.equal(await row.locator('td.error').textContent(), 'smtp down');

    await page.goto(`${server.url}/#/messages/${id}`);
    await page.locator('#message .badge[data-state="dead"]').waitFor();
    await page.locator('#timeline li.dead').waitFor({ timeout: 5000 });
    await shot(page, 'message-dead');
    assert.equal(await strayNulls(page), 0);
    await page.click('#retry');
    await page.locator('#message .badge[data-state="waiting"]').waitFor({ timeout: 5000 });
    assert.equal((await ferry.get(id))?.state, 'waiting');
    assert.deepEqual(errors, []);
    await page.close();
  });

  it("a flow's parent shows its children with their ends, a child links back to it, and pending is counted", async () => {
    const parentQueue = `report-${Date.now()}`;
    const childQueue = `${parentQueue}-parts`;
    const sent = await ferry.sendFlow({
      queue: parentQueue,
      payload: { month: 5 },
      options: { children: 'ignore-failures' },
      children: [
        { queue: childQueue, payload: 'a' },
        { queue: childQueue, payload: 'b' },
        { queue: childQueue, payload: 'c' },
      ],
    });
    const [first] = await ferry.receive(childQueue);
    await ferry.ack(first!, { rows: 12 });
    const [second] = await ferry.receive(childQueue);
    await ferry.nack(second!, { error: { message: 'no such table' }, retry: false });
    const { page, errors } = await newPage();

    await page.goto(`${server.url}/`);
    await page.locator(`#queues tr[data-queue="${parentQueue}"] td[data-col="pending"]`).waitFor();
    assert.equal(
      await page.locator(`#queues tr[data-queue="${parentQueue}"] td[data-col="pending"]`).textContent(),
      '1',
    );

    await page.goto(`${server.url}/#/messages/${sent.id}`);
    await page.locator('#message .badge[data-state="pending"]').waitFor();
    const rows = page.locator('#children tbody tr');
    await rows.first().waitFor();
    assert.equal(await rows.count(), 3);
    assert.deepEqual(await rows.locator('.badge').allTextContents(), ['completed', 'dead', 'waiting']);
    assert.deepEqual(await rows.locator('td.detail').allTextContents(), ['{"rows":12}', 'no such table', '']);
    await shot(page, 'message-flow-parent');

    await page.goto(`${server.url}/#/messages/${first!.id}`);
    const parentLink = page.locator(`#message a[href="#/messages/${sent.id}"]`);
    await parentLink.waitFor();
    assert.equal(await strayNulls(page), 0);
    assert.deepEqual(errors, []);
    await page.close();
  });

  it('pause, resume and purge (after confirming) act on the queue', async () => {
    const queue = `admin-${Date.now()}`;
    await ferry.send(queue, 1);
    await ferry.send(queue, 2);
    const { page } = await newPage(390, 844);
    await page.goto(`${server.url}/#/queues/${queue}`);
    await page.click('#pause');
    await page.locator('#resume').waitFor();
    assert.equal((await ferry.stats(queue)).paused, true);
    await page.click('#resume');
    await page.locator('#pause').waitFor();
    assert.equal((await ferry.stats(queue)).paused, false);
    await page.click('#purge');
    await shot(page, 'purge-confirm-phone');
    assert.equal(await strayNulls(page), 0);
    assert.equal((await ferry.stats(queue)).waiting, 2, 'nothing is deleted before confirming');
    await page.click('#purge-confirm');
    await page.locator('tr.empty').waitFor();
    assert.equal((await ferry.stats(queue)).waiting, 0);
    await page.close();
  });

  it('payloads, errors, queue names and ids with markup render as inert text', async () => {
    const queue = `xss-${Date.now()}`;
    const { id } = await ferry.send(queue, { html: XSS }, { maxAttempts: 1, headers: { note: XSS[1]! } });
    const [delivery] = await ferry.receive(queue);
    await ferry.nack(delivery!, { error: { message: XSS.join(' '), name: XSS[1] } });
    const { page, dialogs, errors } = await newPage();

    await page.goto(`${server.url}/#/messages/${id}`);
    await page.locator('#message pre.payload').waitFor();
    await page.locator('#timeline li.dead').waitFor({ timeout: 5000 });
    assert.match(
      (await page.locator('#message pre.payload').textContent()) ?? '',
      /<script>window.__pwned = 1<\/script>/,
    );
    assert.match((await page.locator('#message pre.error-text').textContent()) ?? '', /"><img src=x onerror=/);
    await page.goto(`${server.url}/#/queues/${queue}`);
    await page.locator(`tr[data-id="${id}"]`).waitFor();
    // Markup in the URL's queue name and message id lands in headings as text too.
    await page.goto(`${server.url}/#/queues/${encodeURIComponent(XSS[1]!)}`);
    await page.locator('#queue h1 .name').waitFor();
    assert.equal(await page.locator('#queue h1 .name').textContent(), XSS[1]);
    await page.goto(`${server.url}/#/messages/${encodeURIComponent(XSS[0]!)}`);
    await page.locator('#message h1').waitFor();
    await page.goto(`${server.url}/`);
    await page.locator(`#queues tr[data-queue="${queue}"]`).waitFor();
    await page.waitForTimeout(300);

    const injected = await page.evaluate(() => ({
      pwned: (window as unknown as { __pwned?: number }).__pwned ?? null,
      imgs: document.querySelectorAll('img').length,
      svgOnload: document.querySelectorAll('svg[onload]').length,
      inlineScripts: Array.from(document.scripts).filter((s) => !s.src).length,
    }));
    assert.deepEqual(injected, { pwned: null, imgs: 0, svgOnload: 0, inlineScripts: 0 });
    assert.deepEqual(dialogs, []);
    assert.deepEqual(errors, []);
    await shot(page, 'xss');
    await page.close();
  });

  it('asks for a token when auth is on, keeps it in sessionStorage, and then shows the queues', async () => {
    const token = 'dashboard-test-token-0123456789';
    const own = await open('memory:');
    await own.send('secret-queue', 1);
    const guarded = await startServer({ ferry: own, port: 0, tokens: [token], plugins: [dashboard], logger: false });
    try {
      const html = await (await fetch(`${guarded.url}/`)).text();
      assert.doesNotMatch(html, /secret-queue/, 'no data in the page before sign-in');
      const { page, errors } = await newPage();
      await page.goto(`${guarded.url}/`);
      await page.fill('#token', 'wrong-token-000000000000');
      await page.click('#sign-in button[type=submit]');
      await page.locator('#sign-in .notice.bad').waitFor();
      await page.fill('#token', token);
      await page.click('#sign-in button[type=submit]');
      await page.locator('#queues tr[data-queue="secret-queue"]').waitFor({ timeout: 5000 });
      await page.locator('#live.on').waitFor({ timeout: 5000 });
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ferry.token')), token);
      await page.click('#sign-out');
      await page.locator('#sign-in').waitFor();
      assert.equal(await page.evaluate(() => sessionStorage.getItem('ferry.token')), null);
      assert.deepEqual(errors, []);
      await page.close();
    } finally {
      await guarded.close();
    }
  });
});
