/**
 * The model-based test (./model.ts) over HTTP: `connect()` to a real listening server whose engine runs on
 * the manual clock (an SQLite file in a temp dir; each scenario gets a server of its own and a fresh queue).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after } from 'node:test';
import { connect } from '../../src/client/index.ts';
import { open } from '../../src/index.ts';
import { startServer } from '../../src/server/index.ts';
import { MODEL_ENGINE, modelTest } from './model.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-model-http-'));
after(() => rmSync(dir, { recursive: true, force: true }));

modelTest(
  {
    name: 'http',
    async open(clock) {
      const served = await open(`sqlite:${join(dir, 'ferry.db')}`, { ...MODEL_ENGINE, clock });
      const server = await startServer({ ferry: served, port: 0, logger: false });
      const ferry = await connect(server.url);
      return {
        ferry,
        async close() {
          await ferry.close();
          await server.close();
        },
      };
    },
  },
  25,
);
