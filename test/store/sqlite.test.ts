/** The store-level suite on an SQLite file in a temporary directory, one file per database. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from '../../src/open.ts';
import { storeSuite } from './suite.ts';

storeSuite({
  name: 'sqlite',
  shared: true,
  transactional: false,
  database: async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ferry-store-'));
    return {
      open: () => createStore(`sqlite:${join(dir, 'ferry.db')}`),
      drop: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
});
