/** `ferry flow FILE.json` and `ferry children ID` against a SQLite store, run as child processes. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { EXIT } from '../../src/core/errors.ts';
import type { FlowSent, MessageInfo } from '../../src/core/types.ts';
import { ferry, json, tempDir } from './helpers.ts';

const temp = tempDir();
const store = `sqlite:${join(temp.dir, 'flows.db')}`;
const run = (args: string[], input?: string) =>
  ferry(args, { env: { FERRY_STORE: store }, ...(input !== undefined && { input }) });

after(() => temp.remove());

describe('ferry flow and ferry children', () => {
  it('flow prints the tree of ids, indented by depth; children lists them with their states', async () => {
    const file = join(temp.dir, 'flow.json');
    const tree = {
      queue: 'report',
      payload: { month: 5 },
      children: [
        { queue: 'fetch', payload: 1, children: [{ queue: 'auth', payload: 'x' }] },
        { queue: 'fetch', payload: 2 },
      ],
    };
    writeFileSync(file, JSON.stringify(tree));
    const sent = await run(['flow', file]);
    assert.equal(sent.code, 0, sent.stderr);
    const lines = sent.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 4);
    assert.match(lines[0] as string, /^[0-9a-f-]{36} {2}report$/);
    assert.match(lines[1] as string, /^ {2}[0-9a-f-]{36} {2}fetch$/);
    assert.match(lines[2] as string, /^ {4}[0-9a-f-]{36} {2}auth$/);
    assert.match(lines[3] as string, /^ {2}[0-9a-f-]{36} {2}fetch$/);
    const root = (lines[0] as string).split(' ')[0] as string;

    const children = await run(['children', root]);
    assert.equal(children.code, 0, children.stderr);
    assert.match(children.stdout, /pending/);
    assert.match(children.stdout, /waiting/);
    const listed = json<MessageInfo[]>(await run(['children', root, '--json']));
    assert.deepEqual(
      listed.map((m) => [m.queue, m.state, m.parentId]),
      [
        ['fetch', 'pending', root],
        ['fetch', 'waiting', root],
      ],
    );
    const parent = await run(['get', root]);
    assert.match(parent.stdout, /state:\s+pending/);

    const again = json<FlowSent>(await run(['flow', '-', '--json'], JSON.stringify({ queue: 'report', payload: 1 })));
    assert.equal(again.queue, 'report');
    assert.equal(again.deduplicated, false);
  });

  it('a bad file or an invalid tree exits non-zero with the reason, sending nothing', async () => {
    const missing = await run(['flow', join(temp.dir, 'nope.json')]);
    assert.equal(missing.code, EXIT.usage);
    assert.match(missing.stderr, /cannot read/);
    const bad = join(temp.dir, 'bad.json');
    writeFileSync(bad, '{"queue": "a", "children": [{"queue": "no spaces"}]}');
    const refused = await run(['flow', bad]);
    assert.equal(refused.code, EXIT.usage);
    assert.match(refused.stderr, /flow\.children\[0\]/);
    const unknown = await run(['children', '0190a0b0-0000-7000-8000-000000000000']);
    assert.equal(unknown.code, EXIT.notFound);
  });
});
