/** The HTTP server: `createServer` over any Ferry, `startServer` over a store URL. */
export type { Access } from './access.ts';
export { createServer, type RouteEntry, type ServerOptions } from './app.ts';
export type { RateLimitOptions } from './rate-limit.ts';
export { isLoopback, type RunningServer, type StartOptions, startServer } from './start.ts';
export { type Grant, parseTokens, SCOPES, type Scope } from './tokens.ts';
