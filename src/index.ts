/** Ferry: a durable broker for asynchronous messages and tasks. */

export { type ConnectOptions, connect } from './client/index.ts';
export { formatDuration, parseDuration } from './core/duration.ts';
export * from './core/errors.ts';
export * from './core/types.ts';
export { type Clock, ManualClock, systemClock } from './engine/clock.ts';
export { Engine, type EngineOptions } from './engine/engine.ts';
export { DEFAULT_STORE, type OpenOptions, open } from './open.ts';
