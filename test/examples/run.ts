/** Runs an example as its README says (`npx tsx FILE`, here `node --import tsx FILE`), as a child process. */
import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment of whoever runs the tests, without variables the examples read, plus `env`. */
function cleanEnv(env: Record<string, string>): NodeJS.ProcessEnv {
  const read = /^(FERRY_|DATABASE_URL$|SHOP_SCHEMA$|PORT$|WORKERS$)/;
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => !read.test(k)));
  return { ...base, ...env };
}

/** A running example. `detached`: its own process group, so `kill()` reaches the processes it started too. */
export class Example {
  readonly child: ChildProcess;
  stdout = '';
  stderr = '';
  readonly exited: Promise<number | null>;

  constructor(file: string, env: Record<string, string> = {}) {
    this.child = spawn(process.execPath, ['--import', 'tsx', file], {
      cwd: ROOT,
      env: cleanEnv(env),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    this.child.stdout?.setEncoding('utf8').on('data', (c: string) => {
      this.stdout += c;
    });
    this.child.stderr?.setEncoding('utf8').on('data', (c: string) => {
      this.stderr += c;
    });
    this.exited = new Promise((resolve) => this.child.once('close', (code) => resolve(code)));
  }

  /** Resolves once stdout has a line matching `pattern`; rejects if the process exits first or after `ms`. */
  async line(pattern: RegExp, ms = 20_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = this.stdout.match(pattern);
      if (match) return match;
      if (this.child.exitCode !== null || Date.now() > deadline) {
        throw new Error(`no line matching ${pattern}\nstdout: ${this.stdout}\nstderr: ${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits for the exit, at most `ms` (then kills the whole group and rejects). */
  async finish(ms = 30_000): Promise<Finished> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        this.kill('SIGKILL');
        reject(new Error(`did not exit within ${ms} ms\nstdout: ${this.stdout}\nstderr: ${this.stderr}`));
      }, ms);
    });
    try {
      const code = await Promise.race([this.exited, late]);
      return { code, stdout: this.stdout, stderr: this.stderr };
    } finally {
      clearTimeout(timer);
    }
  }

  /** Signals the example's whole process group (a no-op once it has gone). */
  kill(signal: NodeJS.Signals): void {
    if (this.child.pid === undefined || this.child.exitCode !== null || this.child.signalCode !== null) return;
    try {
      process.kill(-this.child.pid, signal);
    } catch {
      // Already gone.
    }
  }
}

/** Runs an example to its end. */
export function runExample(file: string, env: Record<string, string> = {}, ms = 30_000): Promise<Finished> {
  return new Example(file, env).finish(ms);
}
