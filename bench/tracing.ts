/**
 * What tracing costs: sequential sends and work() processing on `memory:`, for one or more source trees
 * alternated in one process (so a busy host slows each alike), with or without an OpenTelemetry SDK.
 *
 *   npx tsx bench/tracing.ts                                       this tree, no SDK
 *   npx tsx bench/tracing.ts --roots /tmp/ferry-main,. --rounds 7  main (a worktree of it) against this tree
 *   npx tsx bench/tracing.ts --sdk on                              an SDK recording every span (no export)
 *
 * Prints the median of each figure per tree, and each tree's ratio to the first.
 */
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, NoopSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { Ferry } from '../src/core/types.ts';
import { processing, sequentialSends } from './workloads.ts';

const { values } = parseArgs({
  options: {
    roots: { type: 'string', default: '.' },
    rounds: { type: 'string', default: '5' },
    sdk: { type: 'string', default: 'none' },
    sends: { type: 'string', default: '5000' },
    messages: { type: 'string', default: '20000' },
  },
});

if (values.sdk === 'on') {
  // Spans are made, sampled and ended; a no-op processor keeps export out of the figure.
  trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new NoopSpanProcessor()] }));
  context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
  propagation.setGlobalPropagator(new W3CTraceContextPropagator());
} else if (values.sdk !== 'none') {
  throw new Error('--sdk is none or on');
}

const roots = values.roots.split(',').map((r) => resolve(r));
const opens = await Promise.all(
  roots.map(async (root) => {
    const mod = (await import(`${root}/src/index.ts`)) as { open(url: string): Promise<Ferry> };
    return mod.open;
  }),
);

const figures = new Map<string, number[]>();
for (let round = 0; round < Number(values.rounds); round++) {
  for (const [i, open] of opens.entries()) {
    const ferry = await open('memory:');
    try {
      for (const f of [
        await sequentialSends(ferry, Number(values.sends)),
        await processing(ferry, Number(values.messages), 50),
      ]) {
        const key = `${i}\t${f.name} (${f.unit})`;
        figures.set(key, [...(figures.get(key) ?? []), f.value]);
      }
    } finally {
      await ferry.close();
    }
  }
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const names = [...new Set([...figures.keys()].map((k) => k.split('\t')[1]!))];
for (const name of names) {
  const base = median(figures.get(`0\t${name}`)!);
  for (const [i, root] of roots.entries()) {
    const values = figures.get(`${i}\t${name}`)!;
    const m = median(values);
    console.log(
      `${name}\t${root}\tmedian ${m.toFixed(0)}\tratio ${(m / base).toFixed(3)}\truns ${values.map((v) => v.toFixed(0)).join(' ')}`,
    );
  }
}
