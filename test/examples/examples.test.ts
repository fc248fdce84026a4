/**
 * Each example of examples/ run as written, as child processes: the worker pool on SQLite, the transactional
 * outbox on the test PostgreSQL, the web page in headless Chromium. Their output and their stores are checked.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, it } from 'node:test';
import pg from 'pg';
import { open } from '../../src/index.ts';
import { launchBrowser } from '../support/browser.ts';
import { testDatabase } from '../support/postgres.ts';
import { Example, runExample } from './run.ts';

const WORKER_POOL = 'examples/worker-pool/main.ts';
const OUTBOX = 'examples/transactional-outbox/main.ts';
const WEB_PAGE = 'examples/web-page/launch.ts';

const cleanups: (() => Promise<void> | void)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

describe('examples/worker-pool', () => {
  it('delivers, retries the greylisted, gives up on the busy and kills the bad address at once', async () => {
    const run = await runExample(WORKER_POOL);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stderr, '', 'no warnings or errors');
    const out = run.stdout;
    assert.match(out, /queued 12 e-mails; starting 4 workers/);
    for (const to of ['alan@greylist.example', 'barbara@greylist.example', 'frances@greylist.example']) {
      assert.match(out, new RegExp(`attempt 1 for ${to} failed: 421 greylisted`));
      assert.match(out, new RegExp(`✓ ${to} delivered \\(attempt 2\\) <[^>]+@relay\\.example>`));
    }
    assert.match(out, /✓ ada@example\.com delivered \(attempt 1\)/);
    assert.match(out, /✗ not-an-address dead after 1 attempt\(s\): 550 invalid recipient address/);
    assert.doesNotMatch(out, /attempt \d for not-an-address failed/, 'an UnrecoverableError is not retried');
    assert.match(out, /attempt 4 for margaret@busy\.example failed: 421 mailbox busy/);
    assert.match(out, /✗ margaret@busy\.example dead after 4 attempt\(s\): 421 mailbox busy/);
    assert.match(out, /delivered {2}10 \(3 after a retry\)/);
    assert.match(out, /dead {7}2/);
    assert.match(out, /queue {6}completed=10 dead=2 waiting=0/);
    // The default store is a temporary folder, removed at the end.
    const store = out.match(/^store: sqlite:(.+)$/m)?.[1];
    assert.ok(store, out);
    assert.equal(existsSync(dirname(store)), false, 'the temporary store is deleted');
  });

  it('runs on FERRY_STORE with WORKERS, and a second run sends nobody a second welcome', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-example-test-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const store = `sqlite:${join(dir, 'ferry.db')}`;
    const first = await runExample(WORKER_POOL, { FERRY_STORE: store, WORKERS: '2' });
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, new RegExp(`store: ${store}`));
    assert.match(first.stdout, /starting 2 workers/);
    assert.match(first.stdout, /delivered {2}10 \(3 after a retry\)/);

    const second = await runExample(WORKER_POOL, { FERRY_STORE: store });
    assert.equal(second.code, 0, second.stderr);
    assert.match(second.stdout, /delivered {2}10 \(3 after a retry\)/, 'the results of the first run');
    assert.match(second.stdout, /queue {6}completed=10 dead=2 waiting=0/, 'no new message');

    const ferry = await open(store);
    try {
      const { messages } = await ferry.list('emails', { limit: 100 });
      assert.equal(messages.length, 12);
      const dead = messages.filter((m) => m.state === 'dead');
      assert.deepEqual(dead.map((m) => (m.payload as { to: string }).to).sort(), [
        'margaret@busy.example',
        'not-an-address',
      ]);
      const bad = dead.find((m) => (m.payload as { to: string }).to === 'not-an-address');
      assert.equal(bad?.attempts, 1);
      assert.equal(bad?.error?.name, 'UnrecoverableError');
      const alan = messages.find((m) => (m.payload as { to: string }).to === 'alan@greylist.example');
      assert.equal(alan?.state, 'completed');
      assert.equal((alan?.result as { attempt?: number } | undefined)?.attempt, 2);
    } finally {
      await ferry.close();
    }
  });
});

describe('examples/transactional-outbox', () => {
  it('the committed order has its message; the rolled-back order has neither row nor message', async () => {
    const db = await testDatabase();
    const suffix = randomBytes(4).toString('hex');
    const shop = `ex_shop_${suffix}`;
    const ferrySchema = `ex_ferry_${suffix}`;
    cleanups.push(async () => {
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${shop} CASCADE`);
      await client.query(`DROP SCHEMA IF EXISTS ${ferrySchema} CASCADE`);
      await client.end();
    });
    const run = await runExample(OUTBOX, { DATABASE_URL: db.url, SHOP_SCHEMA: shop, FERRY_SCHEMA: ferrySchema });
    assert.equal(run.code, 0, run.stderr);
    const out = run.stdout;
    const sent = [...out.matchAll(/order (\d+) written, message (\S+) sent; visible outside before COMMIT: (\w+)/g)];
    assert.equal(sent.length, 2, out);
    const [committed, rolledBack] = sent.map((m) => ({ order: m[1] as string, message: m[2] as string }));
    assert.deepEqual(
      sent.map((m) => m[3]),
      ['false', 'false'],
    );
    assert.match(out, /committed; the worker answered: order \d+ confirmed to ada@example\.com/);
    assert.match(out, /rolled back: card declined/);
    assert.match(out, new RegExp(`order ${committed?.order}: in the table; its message: completed`));
    assert.match(out, new RegExp(`order ${rolledBack?.order}: not in the table; its message: does not exist`));

    // And in the database itself.
    const client = new pg.Client({ connectionString: db.url });
    await client.connect();
    try {
      const orders = await client.query(`SELECT id::text, customer FROM ${shop}.orders`);
      assert.deepEqual(orders.rows, [{ id: committed?.order, customer: 'Ada' }]);
    } finally {
      await client.end();
    }
    const ferry = await open(db.url, { schema: ferrySchema });
    try {
      const message = await ferry.get(committed?.message as string);
      assert.equal(message?.state, 'completed');
      assert.deepEqual(message?.payload, { orderId: committed?.order, email: 'ada@example.com', totalCents: 4200 });
      assert.equal(await ferry.get(rolledBack?.message as string), null);
      const stats = await ferry.stats('order-confirmations');
      assert.equal(stats.completed + stats.waiting + stats.active + stats.dead, 1, 'one message in all');
    } finally {
      await ferry.close();
    }
  });
});

describe('examples/web-page', () => {
  it('the page sends work over CORS, shows progress and the result, and shows why a job failed', async () => {
    const example = new Example(WEB_PAGE);
    cleanups.push(() => example.kill('SIGKILL'));
    const pageUrl = (await example.line(/^page: +(\S+)$/m))[1] as string;
    const ferryUrl = (await example.line(/^ferry: +(\S+)/m))[1] as string;
    const store = (await example.line(/^store: +sqlite:(\S+)$/m))[1] as string;
    await example.line(/^worker: taking text-stats jobs/m);
    assert.notEqual(new URL(pageUrl).origin, new URL(ferryUrl).origin, 'the page is on another origin');

    const browser = await launchBrowser();
    cleanups.push(() => browser.close());
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('pageerror', (error) => problems.push(error.message));
    page.on('console', (message) => {
      if (message.type() === 'error') problems.push(message.text());
    });
    // The page follows the queue's events; its stream must be open before the first job, or it misses them.
    const streaming = page.waitForResponse((r) => r.url().startsWith(`${ferryUrl}/v1/events`), { timeout: 10_000 });
    await page.goto(pageUrl);
    await page.locator('#submit button:not([disabled])').waitFor({ timeout: 10_000 });
    assert.equal((await streaming).status(), 200);
    assert.equal(await page.locator('#connection').textContent(), `connected to ${ferryUrl}`);

    await page.fill('#text', 'The quick brown fox jumps over the lazy dog. The dog sleeps! Quick quick.');
    await page.click('#submit button');
    const job = page.locator('#jobs li').first();
    // Live state from the events stream, while the worker is on it.
    await page.locator('#jobs li[data-state="active"]').waitFor({ timeout: 10_000 });
    assert.match((await job.locator('.state').textContent()) ?? '', /^working \(attempt 1\)$/);
    await page.locator('#jobs li[data-state="completed"] .result').waitFor({ timeout: 10_000 });
    assert.equal(
      await job.locator('.result').textContent(),
      '14 words, 3 sentences, about 4 s to read. Most used: quick (3), brown (1), jumps (1), lazy (1), over (1).',
    );
    assert.equal(await job.locator('progress').evaluate((p) => (p as HTMLProgressElement).value), 100);
    const id = (await job.locator('code').textContent()) as string;

    await page.fill('#text', '   ');
    await page.click('#submit button');
    await page.locator('#jobs li[data-state="dead"] .result').waitFor({ timeout: 10_000 });
    assert.equal(
      await page.locator('#jobs li').first().locator('.result').textContent(),
      'there is no text to analyse',
    );

    // Ferry agrees with the page.
    const info = (await (await fetch(`${ferryUrl}/v1/messages/${id}`)).json()) as { state: string; result: unknown };
    assert.equal(info.state, 'completed');
    assert.equal((info.result as { words: number }).words, 14);
    const stats = (await (await fetch(`${ferryUrl}/v1/queues/text-stats`)).json()) as Record<string, unknown>;
    assert.equal(stats.completed, 1);
    assert.equal(stats.dead, 1);
    assert.deepEqual(problems, []);
    await page.close();

    // Ctrl-C (SIGINT to the process group) stops the launcher, its servers and the worker, and cleans up.
    example.kill('SIGINT');
    const end = await example.finish(15_000);
    assert.equal(end.code, 0, end.stderr);
    assert.match(end.stdout, /^worker: stopped$/m);
    assert.match(end.stdout, /^stopped$/m);
    assert.equal(existsSync(dirname(store)), false, 'the temporary store is deleted');
    await assert.rejects(fetch(`${ferryUrl}/healthz`), 'the Ferry server is down');
  });
});
