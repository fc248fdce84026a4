/** `ferry flow FILE.json` (a tree of messages in one transaction) and `ferry children ID`. */
import { readFile } from 'node:fs/promises';
import { Command } from 'commander';
import type { FlowNode, FlowSent } from '../../core/types.ts';
import { action, parseJson, UsageError, withConnection, withFerry } from '../context.ts';
import { messagesTable, printJson, println } from '../output.ts';

/** The tree of ids, one node a line, indented by depth. */
export function flowLines(node: FlowSent, depth = 0): string[] {
  const note = node.deduplicated ? '  (deduplicated)' : '';
  return [
    `${'  '.repeat(depth)}${node.id}  ${node.queue}${note}`,
    ...(node.children ?? []).flatMap((c) => flowLines(c, depth + 1)),
  ];
}

async function readNode(path: string): Promise<FlowNode> {
  let text: string;
  try {
    text = path === '-' ? await readStdin() : await readFile(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read ${path}: ${(error as Error).message}`);
  }
  return parseJson(text, `the flow in ${path}`) as FlowNode;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export const flowCommand = withConnection(
  new Command('flow')
    .description(
      'send a flow from a JSON file (- for stdin): { queue, payload, options?, children?: [nodes] }, all or nothing; prints the tree of ids',
    )
    .argument('<file>', 'the root node as JSON'),
).action(
  action(async (file: string, flags: { json?: boolean }) => {
    const node = await readNode(file);
    await withFerry({ ...flags, create: true }, async (ferry) => {
      const sent = await ferry.sendFlow(node);
      if (flags.json) printJson(sent);
      else println(flowLines(sent).join('\n'));
    });
  }),
);

export const childrenCommand = withConnection(
  new Command('children')
    .description("list a message's flow children with their states (exit 3 when there is no such message)")
    .argument('<id>', 'message id'),
).action(
  action(async (id: string, flags: { json?: boolean }) => {
    await withFerry(flags, async (ferry) => {
      const children = await ferry.children(id);
      if (flags.json) printJson(children);
      else println(children.length === 0 ? 'no children' : messagesTable(children));
    });
  }),
);
