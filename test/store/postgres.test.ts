/**
 * The store-level suite on PostgreSQL: the suite's database is one schema for this file; a test that needs
 * a database of its own (its assertions cover every queue) gets a schema of its own, dropped after it.
 */
import { createStore } from '../../src/open.ts';
import { testSchema } from '../support/postgres.ts';
import { storeSuite } from './suite.ts';

storeSuite({
  name: 'postgres',
  shared: true,
  database: async (label) => {
    const schema = await testSchema(`store_${label}`);
    // A small pool: several stores of one test share the machine's PostgreSQL with other test files.
    return { open: () => createStore(schema.url, { poolSize: 4 }), drop: () => schema.drop() };
  },
});
