/**
 * The conformance suite: the rules of SPEC §1 and the SDK of §3, written only against the public `Ferry`
 * interface and the error classes, so that the same tests run on every store and over HTTP.
 *
 *   conformance('memory', async () => { const ferry = await open('memory:'); return { ferry, close: () => ferry.close() }; });
 *
 * Factories open Ferry with `webhookAllowPrivate: true` (or serve with it), so webhooks may reach the local
 * receivers of the webhook tests.
 *
 * One ferry serves the whole suite (PostgreSQL and HTTP setups are costly); every test uses fresh queue names.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { UnavailableError } from '../../src/core/errors.ts';
import type { Ferry } from '../../src/core/types.ts';
import { adminTests } from './admin.ts';
import { edgeTests } from './edge.ts';
import { eventTests } from './events.ts';
import { failureTests } from './failures.ts';
import { flowControlTests } from './flow-control.ts';
import { flowTests } from './flows.ts';
import { type Ctx, expectError, type Factory, type FerryHandle, qname } from './helpers.ts';
import { keyLimitTests } from './key-limits.ts';
import { loadTests } from './load.ts';
import { orderingTests } from './ordering.ts';
import { receiveTests } from './receive.ts';
import { releaseTests } from './release.ts';
import { scheduleTests } from './schedules.ts';
import { sendTests } from './send.ts';
import { timingTests } from './timing.ts';
import { tracingTests } from './tracing.ts';
import { webhookTests } from './webhooks.ts';
import { workTests } from './work.ts';

export type { Factory, FerryHandle } from './helpers.ts';

/** Registers the conformance tests for one store; `factory` opens a fresh ferry and says how to dispose of it. */
export function conformance(name: string, factory: Factory): void {
  describe(`conformance: ${name}`, () => {
    let handle: FerryHandle | undefined;
    const ctx: Ctx = {
      get ferry(): Ferry {
        assert.ok(handle, 'the ferry is open');
        return handle.ferry;
      },
    };
    before(async () => {
      handle = await factory();
    });
    after(async () => {
      await handle?.close();
    });

    sendTests(ctx);
    receiveTests(ctx);
    failureTests(ctx);
    timingTests(ctx);
    workTests(ctx);
    orderingTests(ctx);
    keyLimitTests(ctx);
    adminTests(ctx);
    eventTests(ctx);
    scheduleTests(ctx);
    webhookTests(ctx);
    releaseTests(ctx);
    flowTests(ctx);
    edgeTests(ctx);
    loadTests(ctx);
    tracingTests(ctx);
    flowControlTests(ctx);
  });

  describe(`conformance: ${name} close()`, () => {
    it('operations after close() reject with UnavailableError; close() twice is harmless', async () => {
      const handle = await factory();
      const { ferry } = handle;
      const q = qname();
      const sent = await ferry.send(q, 'before close');
      await ferry.close();
      await ferry.close();
      try {
        const calls: [string, () => Promise<unknown>][] = [
          ['send', () => ferry.send(q, 'after close')],
          ['sendBatch', () => ferry.sendBatch(q, [{ payload: 1 }])],
          ['receive', () => ferry.receive(q)],
          ['get', () => ferry.get(sent.id)],
          ['stats', () => ferry.stats(q)],
          ['queues', () => ferry.queues()],
          ['cancel', () => ferry.cancel(sent.id)],
          ['list', () => ferry.list(q)],
          ['configure', () => ferry.configure(q)],
          ['publish', () => ferry.publish(qname('t'), 1)],
        ];
        for (const [what, fn] of calls) await expectError(fn, UnavailableError, `${what} after close`);
      } finally {
        await handle.close();
      }
    });
  });
}
