/** The conformance suite over HTTP: `connect()` to a real listening server on a SQLite store in a temp dir. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from '../../src/client/index.ts';
import { startServer } from '../../src/server/index.ts';
import { conformance } from './suite.ts';

conformance('http', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-http-'));
  const server = await startServer({
    store: `sqlite:${join(dir, 'ferry.db')}`,
    port: 0,
    logger: false,
    webhookAllowPrivate: true,
  });
  const ferry = await connect(server.url);
  return {
    ferry,
    async close() {
      await ferry.close();
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
});
