/**
 * `ferry/client`: the Ferry interface over HTTP, for browsers and for processes that share one server.
 * Imports nothing from `node:`.
 *
 *   import { connect } from 'ferry/client';
 *   const ferry = await connect('http://127.0.0.1:7070', { token });
 */
import type { Ferry } from '../core/types.ts';
import { HttpFerry } from './client.ts';
import { type Fetch, Transport } from './http.ts';

export interface ConnectOptions {
  /** A token of the server's (`Authorization: Bearer …`); omit when the server has none. */
  token?: string;
  /** A fetch implementation; default: the global one. */
  fetch?: Fetch;
}

/** A {@link Ferry} backed by the Ferry server at `url`. Nothing is sent until the first call. */
export async function connect(url: string, options: ConnectOptions = {}): Promise<Ferry> {
  return new HttpFerry(new Transport(url, options.token, options.fetch));
}

export * from '../core/errors.ts';
export type * from '../core/types.ts';
export { HttpFerry };
