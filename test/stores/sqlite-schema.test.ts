/** docs/schema/sqlite.sql is what the migrations produce: a changed migration without `npm run schema` fails here. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { committed, SCHEMAS } from '../../scripts/dump-schema.ts';

describe('docs/schema/sqlite.sql', () => {
  it('matches a fresh migration', async () => {
    const schema = SCHEMAS.sqlite;
    assert.ok(schema);
    const fresh = await schema.dump();
    assert.match(fresh, /CREATE TABLE messages/);
    assert.equal(await committed(schema), fresh, `${schema.file} is stale: run npm run schema`);
  });
});
