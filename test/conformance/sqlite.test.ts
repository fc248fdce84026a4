import { randomUUID } from 'node:crypto';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { open } from '../../src/index.ts';
import { conformance } from './suite.ts';

conformance('sqlite:', async () => {
  const file = join(tmpdir(), `ferry-conformance-${randomUUID()}.db`);
  const ferry = await open(`sqlite:${file}`, { webhookAllowPrivate: true });
  return {
    ferry,
    async close() {
      await ferry.close();
      for (const suffix of ['', '-wal', '-shm', '-journal']) await rm(file + suffix, { force: true });
    },
  };
});
