/** docs/schema/*.sql are what the migrations produce: a changed migration without `npm run schema` fails here. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { committed, SCHEMAS } from '../../scripts/dump-schema.ts';

describe('docs/schema', () => {
  for (const [name, schema] of Object.entries(SCHEMAS)) {
    it(`${schema.file} matches a fresh ${name} migration`, async () => {
      const fresh = await schema.dump();
      assert.match(fresh, /CREATE TABLE (ferry\.)?messages/);
      assert.equal(await committed(schema), fresh, `${schema.file} is stale: run npm run schema`);
    });
  }
});
