/**
 * Where an error that has no caller to go to is reported: an event listener's throw. Delivery to the other
 * listeners goes on and the process keeps running; the error shows as a process warning (`--trace-warnings`
 * gives its origin), or on the console where there is no `process` (a browser).
 */
export function reportListenerError(error: unknown): void {
  const text = `a Ferry event listener threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`;
  const host = (globalThis as { process?: { emitWarning?: (text: string, options: { code: string }) => void } })
    .process;
  if (typeof host?.emitWarning === 'function') host.emitWarning(text, { code: 'FERRY_LISTENER_ERROR' });
  else console.warn(text);
}
