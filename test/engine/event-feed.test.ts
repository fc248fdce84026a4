/**
 * An embedded events() stream holds the process open while it waits, as a socket does over HTTP, and lets
 * it go when closed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { FerryEvent } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';

const CHILD = fileURLToPath(new URL('./event-feed-child.ts', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ferry-event-feed-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Ref'd timers, the handle a waiting stream holds. */
const refTimers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

describe('events() keeps the process alive while it waits', () => {
  it('on memory:, a pending next() holds one ref’d handle, released when an event comes and at close', async () => {
    // No sweep during the test: its work could hold a timer of its own between two counts.
    const ferry = await open('memory:', { sweepInterval: 3_600_000 });
    try {
      const stream = ferry.events({ queue: 'held' });
      await stream.since();
      const before = refTimers();
      const iterator = stream[Symbol.asyncIterator]();
      const first = iterator.next();
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(refTimers(), before + 1, 'waiting holds the event loop open');
      const sent = await ferry.send('held', 1);
      assert.equal((await first).value?.id, sent.id);
      assert.equal(refTimers(), before, 'an answered next() holds nothing');
      const second = iterator.next();
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(refTimers(), before + 1);
      stream.close();
      assert.deepEqual(await second, { done: true, value: undefined });
      assert.equal(refTimers(), before, 'a closed stream holds nothing');
    } finally {
      await ferry.close();
    }
  });

  it('on sqlite:, a child that only iterates waits, receives an event sent by another process, exits 0 when closed', async () => {
    const url = `sqlite:${join(dir, 'feed.db')}`;
    const producer = await open(url); // also creates the database before the child opens it
    const child = spawn(process.execPath, ['--import', 'tsx', CHILD, url, 'followed'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const hang = setTimeout(() => child.kill('SIGKILL'), 60_000);
    try {
      let stdout = '';
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (c: string) => {
        stderr += c;
      });
      const exited = new Promise<number | null>((resolve) => child.once('close', resolve));
      const lines: string[] = [];
      let waiter: (() => void) | undefined;
      child.stdout.setEncoding('utf8').on('data', (c: string) => {
        stdout += c;
        const parts = stdout.split('\n');
        stdout = parts.pop() ?? '';
        lines.push(...parts);
        waiter?.();
      });
      const line = async (n: number): Promise<string> => {
        while (lines.length < n) {
          if (child.exitCode !== null) throw new Error(`child exited ${child.exitCode}; stderr: ${stderr}`);
          await Promise.race([new Promise<void>((resolve) => (waiter = resolve)), exited]);
        }
        return lines[n - 1] as string;
      };

      const { since } = JSON.parse(await line(1)) as { since: number };
      assert.ok(Number.isInteger(since));
      // Without the stream holding it, the child would be gone (exit 13) long before this.
      await new Promise((resolve) => setTimeout(resolve, 300));
      assert.equal(child.exitCode, null, `the child is still waiting; stderr: ${stderr}`);

      const sent = await producer.send('followed', { from: 'another process' });
      const event = JSON.parse(await line(2)) as FerryEvent;
      assert.deepEqual([event.type, event.queue, event.id], ['sent', 'followed', sent.id]);

      child.kill('SIGTERM');
      assert.equal(await exited, 0, stderr);
      assert.equal(await line(3), 'closed');
    } finally {
      clearTimeout(hang);
      child.kill('SIGKILL');
      await producer.close();
    }
  });
});
