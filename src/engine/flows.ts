/**
 * Flows above the stores: a tree given to `sendFlow` is checked whole (every queue name and option, the
 * depth and size limits) and flattened parents-first before anything is inserted; the store's outcomes are
 * folded back into the same tree.
 */
import { InvalidRequestError } from '../core/errors.ts';
import type { FlowNode, FlowOptions, FlowSent, SendOptions } from '../core/types.ts';
import { checkKeys, checkObject, checkQueueName } from '../core/validate.ts';
import { FLOW_MAX_DEPTH, FLOW_MAX_NODES } from '../store/constants.ts';
import type { FlowMessage, NewMessage, SendOutcome } from '../store/store.ts';

const NODE_FIELDS = ['queue', 'payload', 'options', 'children'];
const POLICIES = ['fail-parent', 'ignore-failures'];

type MakeMessage = (queue: string, payload: unknown, options: SendOptions) => NewMessage;

/** The tree as the store takes it, parents first; throws InvalidRequestError naming the node at fault. */
export function flowNodes(root: FlowNode, message: MakeMessage): FlowMessage[] {
  const nodes: FlowMessage[] = [];
  const visit = (value: unknown, path: string, parent: number | null, depth: number): void => {
    if (depth > FLOW_MAX_DEPTH)
      throw new InvalidRequestError(`${path}: a flow is at most ${FLOW_MAX_DEPTH} levels deep`);
    if (nodes.length >= FLOW_MAX_NODES)
      throw new InvalidRequestError(`a flow holds at most ${FLOW_MAX_NODES} messages`);
    const index = nodes.length;
    let children: unknown[];
    try {
      const node = checkObject(value, 'node');
      checkKeys(node, NODE_FIELDS, 'node');
      const queue = checkQueueName(node.queue);
      children = node.children === undefined ? [] : (node.children as unknown[]);
      if (!Array.isArray(children)) throw new InvalidRequestError('children must be an array of nodes');
      const given = (node.options === undefined ? {} : checkObject(node.options, 'options')) as FlowOptions &
        SendOptions;
      const { children: policy, ...options } = given;
      if (options.transaction !== undefined) throw new InvalidRequestError('a flow takes no transaction');
      if (policy !== undefined && !POLICIES.includes(policy)) {
        throw new InvalidRequestError(`options.children must be one of ${POLICIES.join(', ')}`);
      }
      if (children.length === 0 && policy !== undefined) {
        throw new InvalidRequestError('options.children applies only to a node with children');
      }
      if (children.length > 0 && options.key !== undefined) {
        throw new InvalidRequestError('a node with children takes no ordering key (its children may)');
      }
      nodes.push({
        ...message(queue, node.payload, options),
        parent,
        children: children.length,
        ignoreFailures: policy === 'ignore-failures',
      });
    } catch (error) {
      if (error instanceof Error) error.message = `${path}: ${error.message}`;
      throw error;
    }
    for (let i = 0; i < children.length; i++) visit(children[i], `${path}.children[${i}]`, index, depth + 1);
  };
  visit(root, 'flow', null, 1);
  return nodes;
}

/** The answer: the tree of ids, a deduplicated node without the subtree that was not inserted. */
export function flowTree(nodes: FlowMessage[], outcomes: (SendOutcome | null)[]): FlowSent {
  const answers: FlowSent[] = nodes.map((node, i) => {
    const outcome = outcomes[i] ?? { id: node.id, deduplicated: false };
    const sent: FlowSent = { id: outcome.id, queue: node.queue, deduplicated: outcome.deduplicated };
    if (node.children > 0 && !outcome.deduplicated) sent.children = [];
    return sent;
  });
  nodes.forEach((node, i) => {
    if (node.parent === null || outcomes[i] === null) return;
    answers[node.parent]?.children?.push(answers[i] as FlowSent);
  });
  return answers[0] as FlowSent;
}
