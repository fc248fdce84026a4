/** The report's arithmetic: medians and spreads, ratios of medians, per-run ranges, and each target's verdict. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { median, ratios, render, rows, type Samples, targets } from './report.ts';

function samples(data: Record<string, Record<string, number[]>>): Samples {
  return new Map(
    Object.entries(data).map(([system, figures]) => [
      system,
      new Map(Object.entries(figures).map(([key, values]) => [key, values.map((value, i) => ({ run: i + 1, value }))])),
    ]),
  );
}

const order = ['bullmq', 'ferry-sqlite', 'graphile-worker', 'ferry-postgres', 'raw-sqlite', 'ferry-http', 'http'];

test('median of odd and even counts', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
});

test('rows: median, min, max, spread and the run of each value, in the given system order', () => {
  const table = rows(samples({ 'ferry-sqlite': { c: [100, 300, 200] }, bullmq: { c: [10, 20] } }), order);
  assert.deepEqual(
    table.map((r) => [r.system, r.key, r.median, r.min, r.max, r.runs]),
    [
      ['bullmq', 'c', 15, 10, 20, 2],
      ['ferry-sqlite', 'c', 200, 100, 300, 3],
    ],
  );
  assert.equal(table[1]!.spread, 1);
  assert.deepEqual(table[1]!.runOf, [1, 2, 3]);
});

test('targets: met at the boundary, not met just below, not measured when a side is missing', () => {
  const table = rows(
    samples({
      bullmq: { c: [1000], d50: [0.5] },
      'graphile-worker': { b: [500], c: [2000], d50: [1.5] },
      'ferry-sqlite': { a: [899], c: [6000], d50: [0.5] },
      'raw-sqlite': { sqliteSingle: [1000] },
      'ferry-postgres': { b: [499], c: [3000], d50: [1.6] },
      http: { send: [600], bare: [1000] },
      'ferry-http': { b: [100_000] },
    }),
    order,
  );
  const verdict = Object.fromEntries(targets(table).map((t) => [t.name, t.met]));
  assert.deepEqual(verdict, {
    'sqlite: processing ÷ graphile-worker': true, // 3.0×
    'sqlite: processing ÷ BullMQ': true, // 6×
    'sqlite: sequential send ÷ raw SQLite 1 row per FULL commit': false, // 0.899×
    'sqlite: send→start p50 ÷ BullMQ p50': true, // equal
    'postgres: processing ÷ graphile-worker': true, // 1.5×
    'postgres: batch send ÷ graphile-worker': false, // 0.998×
    'postgres: send→start p50 ÷ graphile-worker p50': false, // slower
    'HTTP: single sends ÷ bare node:http': true, // 0.60×
    'HTTP: batch send (msgs/s)': true,
  });
  const none = targets(rows(samples({ bullmq: { c: [1000] } }), order));
  assert.ok(none.every((t) => t.met === null && t.value === null));
  assert.match(
    render(table, [], []),
    /\| sqlite: sequential send ÷ raw SQLite 1 row per FULL commit \| ≥ 0\.90× \| 0\.90× \|.*\*\*not met\*\*/,
  );
});

test('per-run range pairs values of the same run only', () => {
  const data = samples({ 'ferry-sqlite': { c: [3000, 9000] }, 'graphile-worker': { c: [1000, 1000] } });
  // graphile-worker's first run failed: only run 2 pairs.
  data.get('graphile-worker')!.set('c', [{ run: 2, value: 1000 }]);
  const target = targets(rows(data, order)).find((t) => t.name === 'sqlite: processing ÷ graphile-worker')!;
  assert.equal(target.value, 6);
  assert.deepEqual(target.range, [9, 9]);
});

test('ratios: Ferry ÷ each peer and ÷ its raw limit', () => {
  const table = rows(
    samples({ bullmq: { c: [100] }, 'ferry-sqlite': { c: [250], a: [50] }, 'raw-sqlite': { sqliteSingle: [100] } }),
    order,
  );
  const found = ratios(table).map((r) => [r.ferry, r.figure, r.to, r.ratio]);
  assert.deepEqual(found, [
    ['ferry-sqlite', 'c', 'bullmq', 2.5],
    ['ferry-sqlite', 'a', 'raw-sqlite', 0.5],
  ]);
});
