/**
 * `npm start` stopped the way Docker (`CMD npm start`) and systemd stop it: SIGTERM to the npm process
 * alone. npm passes the signal to the script's shell; the script must hand it on to the server, which drains
 * and exits 0, and nothing may be left running or listening.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { it } from 'node:test';
import { ROOT } from './helpers.ts';

/** Every process below `pid`, from `ps` (Linux and macOS alike). */
function descendants(pid: number): number[] {
  const rows = execFileSync('ps', ['-e', '-o', 'pid=,ppid='], { encoding: 'utf8' })
    .trim()
    .split('\n')
    .map((line) => line.trim().split(/\s+/).map(Number) as [number, number]);
  const found: number[] = [];
  const walk = (parent: number) => {
    for (const [child, ppid] of rows) {
      if (ppid === parent) {
        found.push(child);
        walk(child);
      }
    }
  };
  walk(pid);
  return found;
}

/** Running, not merely a zombie waiting for its parent to reap it. */
const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
};

/** The command lines of `pids`, for a failure message. */
function commands(pids: number[]): string {
  return pids
    .map((pid) => {
      try {
        return `${pid}: ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
      } catch {
        return `${pid}`;
      }
    })
    .join('\n');
}

function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

it('SIGTERM to the npm start process drains the server, exits 0, and leaves nothing running', async () => {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('FERRY_')));
  const npm = spawn('npm', ['start', '--', '--store', 'memory:', '--port', '0', '--json'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let below: number[] = [];
  const hang = setTimeout(() => {
    npm.kill('SIGKILL');
    for (const pid of below) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }, 90_000);
  try {
    let stdout = '';
    let stderr = '';
    npm.stderr.setEncoding('utf8').on('data', (c: string) => {
      stderr += c;
    });
    const exited = new Promise<number | null>((resolve) => npm.once('close', resolve));
    // npm prints its own header lines first; the server's --json line says where it listens.
    const url = await new Promise<string>((resolve, reject) => {
      npm.stdout.setEncoding('utf8').on('data', (c: string) => {
        stdout += c;
        const match = stdout.match(/^\{"url":"(http:\/\/[^"]+)"/m);
        if (match) resolve(match[1] as string);
      });
      void exited.then((code) => reject(new Error(`npm start exited ${code}\n${stdout}\n${stderr}`)));
    });
    const port = Number(new URL(url).port);
    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    below = descendants(npm.pid as number);
    assert.ok(below.length > 0, 'npm started the server below it');

    npm.kill('SIGTERM');
    assert.equal(await exited, 0, `npm start exits 0 after the server drained\n${stderr}`);
    // The server exited before npm did (npm waits for its child); what tsx started beside it (its esbuild
    // service) goes once its parent has: nothing below npm may still run a few seconds later.
    for (let waited = 0; below.some(alive) && waited < 5000; waited += 100) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    const left = below.filter(alive);
    assert.deepEqual(left, [], `no process npm started is still running:\n${commands(left)}`);
    assert.equal(await portFree(port), true, `port ${port} is free again`);
  } finally {
    clearTimeout(hang);
    for (const pid of below) if (alive(pid)) process.kill(pid, 'SIGKILL');
  }
});
