import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root. */
export const repoRoot = fileURLToPath(new URL('..', import.meta.url));

/**
 * The state directory the tests share: one simulated root for the whole run, made by whichever test needs it
 * first (making it costs two RSA-4096 key generations).
 */
export const testHome = join(repoRoot, '.donjon-test', 'home');

export const cliPath = join(repoRoot, 'bin', 'donjon.js');

export function example(name: string): string {
  return join(repoRoot, 'examples', name, `${name}.wasm`);
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

export interface CliOptions {
  input?: string | Buffer;
  /** Give the command a stdin pipe that stays open until it ends. */
  stdinOpen?: boolean;
  env?: Record<string, string>;
  /** Called with the child once it runs, e.g. to send it a signal. */
  onSpawn?: (child: import('node:child_process').ChildProcess) => void;
  timeoutMs?: number;
}

/**
 * Runs the donjon command as a user would, in its own process group so that the test can tell afterwards
 * whether any process it started (Keep Loader, Keep) outlived it.
 */
export function runCli(args: string[], options: CliOptions = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliPath, ...args], {
      cwd: repoRoot,
      env: { PATH: process.env['PATH'] ?? '', DONJON_HOME: testHome, ...options.env },
      stdio: [options.input === undefined && !options.stdinOpen ? 'ignore' : 'pipe', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
    });
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
    });
    if (options.input !== undefined) child.stdin!.end(options.input);
    child.stdin?.on('error', () => {});
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`donjon ${args.join(' ')} did not finish in time; stderr: ${stderr}`));
    }, options.timeoutMs ?? 60_000);
    options.onSpawn?.(child);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr, pid: child.pid! });
    });
  });
}

/** Pids of live processes in a process group (read from /proc). */
export function processGroupMembers(pgid: number): number[] {
  const members: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may hold spaces.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const state = fields[0];
      if (Number(fields[2]) === pgid && state !== 'Z') members.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return members;
}

/** Waits until a process group is empty, or fails with the pids still alive. */
export async function expectGroupGone(pgid: number, withinMs = 3000): Promise<void> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const left = processGroupMembers(pgid);
    if (left.length === 0) return;
    if (Date.now() > deadline) throw new Error(`processes left behind: ${left.join(', ')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A port free on 127.0.0.1 now (bound, read and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = (s.address() as { port: number }).port;
      s.close(() => resolve(p));
    });
  });
}

/**
 * Starts `donjon host` as an operator runs it, on 127.0.0.1:`port` with state directory `state`, and resolves
 * once it logs that it listens (rejects with its log if it exits first, or after 20 s).
 */
export function startDaemon(port: number, state: string): Promise<ChildProcess> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [cliPath, 'host', '--listen', `127.0.0.1:${port}`, '--state', state],
      {
        cwd: repoRoot,
        env: { PATH: process.env['PATH'] ?? '' },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let log = '';
    const timer = setTimeout(() => reject(new Error(`donjon host did not start: ${log}`)), 20_000);
    child.stderr!.on('data', (c: Buffer) => {
      log += c.toString('utf8');
      if (log.includes('"event":"listening"')) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`donjon host exited with ${code}: ${log}`));
    });
  });
}
