import { after } from 'node:test';
import { open } from '../../src/index.ts';
import { testSchema } from '../support/postgres.ts';
import { conformance } from './suite.ts';

// One schema for this file; every ferry the suite opens shares it (tests use fresh queue names).
const schema = testSchema('conformance');
after(async () => {
  await (await schema).drop();
});

conformance('postgres', async () => {
  const ferry = await open((await schema).url, { webhookAllowPrivate: true });
  return { ferry, close: () => ferry.close() };
});
