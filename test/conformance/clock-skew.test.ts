/**
 * The receive rules on a store whose clock runs ahead of this process's, as PostgreSQL's may (its time is
 * this process's corrected by a measured offset): tests must compare times from one clock only.
 */
import { after, before, describe } from 'node:test';
import type { Ferry } from '../../src/core/types.ts';
import { systemClock } from '../../src/engine/clock.ts';
import { open } from '../../src/index.ts';
import type { Ctx } from './helpers.ts';
import { receiveTests } from './receive.ts';

const AHEAD_MS = 30;

describe(`conformance: memory: with its clock ${AHEAD_MS} ms ahead`, () => {
  let ferry: Ferry | undefined;
  const ctx: Ctx = {
    get ferry(): Ferry {
      if (!ferry) throw new Error('the ferry is not open');
      return ferry;
    },
  };
  before(async () => {
    ferry = await open('memory:', { clock: { ...systemClock, now: () => Date.now() + AHEAD_MS } });
  });
  after(async () => ferry?.close());
  receiveTests(ctx);
});
