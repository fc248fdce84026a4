/**
 * The store-level suite on PostgreSQL: the suite's database is one schema for this file; a test that needs
 * a database of its own (its assertions cover every queue) gets a schema of its own, dropped after it.
 */
import pg from 'pg';
import { createStore } from '../../src/open.ts';
import { testDatabase, testSchema } from '../support/postgres.ts';
import { storeSuite } from './suite.ts';

storeSuite({
  name: 'postgres',
  shared: true,
  transactional: true,
  database: async (label) => {
    const schema = await testSchema(`store_${label}`);
    return {
      // A small pool: several stores of one test share the machine's PostgreSQL with other test files.
      open: () => createStore(schema.url, { poolSize: 4 }),
      drop: () => schema.drop(),
      async begin() {
        // The application's own connection: the store's tables are schema-qualified, so no search_path.
        const client = new pg.Client({ connectionString: (await testDatabase()).url });
        await client.connect();
        await client.query('BEGIN');
        const end = async (sql: string) => {
          try {
            await client.query(sql);
          } finally {
            await client.end();
          }
        };
        return { handle: client, commit: () => end('COMMIT'), rollback: () => end('ROLLBACK') };
      },
    };
  },
});
