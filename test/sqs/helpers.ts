/**
 * An SQS test bench: a server with the SQS port on a fresh memory store, and the AWS SDK's own client
 * against it in either protocol: JSON (the SDK's default) or query (the SDK's query serializer and XML
 * parser, given SQS's own model), so every action is driven by a real client both ways.
 */

import { SQSClient, type SQSClientConfig } from '@aws-sdk/client-sqs';
import { AwsQueryProtocol } from '@aws-sdk/core/protocols';
import { type RunningServer, startServer } from '../../src/server/index.ts';

export type Protocol = 'json' | 'query';
export const PROTOCOLS: Protocol[] = ['json', 'query'];

export interface Bench {
  server: RunningServer;
  /** The SQS endpoint. */
  endpoint: string;
  client(protocol: Protocol, credentials?: { accessKeyId: string; secretAccessKey: string }): SQSClient;
  close(): Promise<void>;
}

export const ANY_CREDENTIALS = { accessKeyId: 'AKIDANYTHING', secretAccessKey: 'anything-at-all' };

export function sqsClient(
  endpoint: string,
  protocol: Protocol,
  credentials: { accessKeyId: string; secretAccessKey: string } = ANY_CREDENTIALS,
  extra: Partial<SQSClientConfig> = {},
): SQSClient {
  return new SQSClient({
    ...extra,
    endpoint,
    region: 'us-east-1',
    credentials,
    maxAttempts: 1,
    ...(protocol === 'query'
      ? {
          protocol: AwsQueryProtocol,
          protocolSettings: {
            defaultNamespace: 'com.amazonaws.sqs',
            xmlNamespace: 'http://queue.amazonaws.com/doc/2012-11-05/',
            version: '2012-11-05',
          },
        }
      : {}),
  } as SQSClientConfig);
}

export async function startBench(options: { tokens?: string[] } = {}): Promise<Bench> {
  const server = await startServer({
    store: 'memory:',
    port: 0,
    sqsPort: 0,
    logger: false,
    ...(options.tokens ? { tokens: options.tokens } : {}),
  });
  const endpoint = server.sqsUrl as string;
  const clients: SQSClient[] = [];
  return {
    server,
    endpoint,
    client(protocol, credentials) {
      const c = sqsClient(endpoint, protocol, credentials);
      clients.push(c);
      return c;
    },
    async close() {
      for (const c of clients) c.destroy();
      await server.close();
    },
  };
}

let counter = 0;
/** A fresh queue name per test. */
export function qname(prefix = 'q'): string {
  counter += 1;
  return `${prefix}-${process.pid}-${Date.now().toString(36)}-${counter}`;
}
