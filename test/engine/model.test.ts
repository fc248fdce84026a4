/** The model-based test (./model.ts) on the embedded stores: `memory:` and an SQLite file. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { open } from '../../src/index.ts';
import { MODEL_ENGINE, modelTest } from './model.ts';

modelTest(
  {
    name: 'memory',
    async open(clock) {
      const ferry = await open('memory:', { ...MODEL_ENGINE, clock });
      return { ferry, close: () => ferry.close() };
    },
  },
  300,
);

// One file for every scenario (each uses a queue of its own), as a long-lived embedded store would be.
const dir = mkdtempSync(join(tmpdir(), 'ferry-model-'));
after(() => rmSync(dir, { recursive: true, force: true }));

modelTest(
  {
    name: 'sqlite',
    async open(clock) {
      const ferry = await open(`sqlite:${join(dir, 'ferry.db')}`, { ...MODEL_ENGINE, clock });
      return { ferry, close: () => ferry.close() };
    },
  },
  300,
);
