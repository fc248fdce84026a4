/** Shared setup of the server tests: a memory-store Ferry behind an injected (socket-less) app. */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { Ferry } from '../../src/core/types.ts';
import { open } from '../../src/index.ts';
import { createServer, type ServerOptions } from '../../src/server/index.ts';

export interface Harness {
  ferry: Ferry;
  app: FastifyInstance;
  close(): Promise<void>;
}

export async function harness(options: ServerOptions = {}): Promise<Harness> {
  const ferry = await open('memory:');
  const app = await createServer(ferry, { logger: false, ...options });
  await app.ready();
  return {
    ferry,
    app,
    async close() {
      await app.close();
      await ferry.close();
    },
  };
}

export const qname = (prefix = 'q'): string => `${prefix}-${randomUUID().slice(0, 8)}`;

export const json = (body: string): unknown => JSON.parse(body);
