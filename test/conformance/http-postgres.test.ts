/** The conformance suite over HTTP on PostgreSQL: `connect()` to a real listening server on a test schema. */
import { after } from 'node:test';
import { connect } from '../../src/client/index.ts';
import { startServer } from '../../src/server/index.ts';
import { testSchema } from '../support/postgres.ts';
import { conformance } from './suite.ts';

// One schema for this file; every server the suite starts shares it (tests use fresh queue names).
const schema = testSchema('conformance_http');
after(async () => {
  await (await schema).drop();
});

conformance('http-postgres', async () => {
  const server = await startServer({ store: (await schema).url, port: 0, logger: false, webhookAllowPrivate: true });
  const ferry = await connect(server.url);
  return {
    ferry,
    async close() {
      await ferry.close();
      await server.close();
    },
  };
});
