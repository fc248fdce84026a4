/** The store-level suite on `memory:` (SQLite's in-memory database; every open is a database of its own). */
import { createStore } from '../../src/open.ts';
import { storeSuite } from './suite.ts';

storeSuite({
  name: 'memory',
  shared: false,
  transactional: false,
  database: async () => ({ open: () => createStore('memory:'), drop: async () => {} }),
});
