/** A TypeScript child process run with tsx, talked to by lines: its stdout read line by line, lines sent to its stdin. */
import { type ChildProcess, spawn } from 'node:child_process';

export interface Child {
  proc: ChildProcess;
  /** The next line the child printed; rejects when it exits first. */
  line(): Promise<string>;
  send(line: string): void;
}

/** Starts `script` with `args`; its stdout lines are collected from the start: a fast child may finish before anyone asks. */
export function child(script: string, args: string[]): Child {
  const proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  let ended = false;
  let wake: (() => void) | undefined;
  let buffer = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    buffer += chunk.toString();
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      lines.push(buffer.slice(0, nl));
      buffer = buffer.slice(nl + 1);
    }
    wake?.();
  });
  // 'close', not 'exit': the last lines may still be in the pipe when the process has exited.
  proc.once('close', () => {
    ended = true;
    wake?.();
  });
  return {
    proc,
    async line() {
      for (;;) {
        const line = lines.shift();
        if (line !== undefined) return line;
        if (ended) throw new Error(`child exited (code ${proc.exitCode}, signal ${proc.signalCode}) before a line`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    },
    send(line) {
      proc.stdin?.write(`${line}\n`);
    },
  };
}
