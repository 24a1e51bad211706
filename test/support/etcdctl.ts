/**
 * Runs the real etcdctl (v3 API) against one endpoint with a client certificate, as an
 * operator or Kubernetes tooling would. `etcdctl()` runs a command to completion;
 * `spawnEtcdctl()` + `readLines()` drive long-running commands such as `watch`.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';

/** Where and as whom etcdctl connects. */
export interface EtcdctlOptions {
  /** https://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly cert: string;
  readonly key: string;
  readonly cacert: string;
  /** Written to stdin, then stdin is closed (stdin is always closed). */
  readonly input?: string;
  /** Kill etcdctl after this long (default 20 s); also bounds --command-timeout. */
  readonly timeoutMs?: number;
  /** Extra environment for etcdctl (merged last). */
  readonly env?: Record<string, string>;
}

/** Outcome of one etcdctl run; code is -1 when it was killed (timeout or signal). */
export interface EtcdctlResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const DEFAULT_TIMEOUT_MS = 20_000;

function commandLine(args: readonly string[], opts: EtcdctlOptions): { bin: string; argv: string[]; env: NodeJS.ProcessEnv } {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // etcdctl's own deadline sits a little below ours, so it can report its error itself.
  const commandTimeoutS = Math.max(1, Math.floor(timeoutMs / 1000) - 1);
  // Inherited ETCDCTL_* variables (a developer's shell) must not change what a test does.
  const env: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (!name.startsWith('ETCDCTL_')) env[name] = value;
  }
  Object.assign(env, { ETCDCTL_API: '3' }, opts.env);
  return {
    bin: process.env['ETCDCTL_BIN'] ?? 'etcdctl',
    argv: [
      `--endpoints=${opts.endpoint}`,
      `--cacert=${opts.cacert}`,
      `--cert=${opts.cert}`,
      `--key=${opts.key}`,
      '--dial-timeout=5s',
      `--command-timeout=${commandTimeoutS}s`,
      ...args,
    ],
    env,
  };
}

function start(args: readonly string[], opts: EtcdctlOptions): ChildProcess {
  const { bin, argv, env } = commandLine(args, opts);
  const child = spawn(bin, argv, { env, stdio: ['pipe', 'pipe', 'pipe'] });
  // etcdctl may exit before reading stdin; EPIPE then is expected, not a failure.
  child.stdin?.on('error', () => undefined);
  child.stdin?.end(opts.input ?? '');
  return child;
}

/** Runs `etcdctl <global flags> ...args` to completion; kills it after opts.timeoutMs. */
export function etcdctl(args: readonly string[], opts: EtcdctlOptions): Promise<EtcdctlResult> {
  return new Promise((resolve, reject) => {
    const child = start(args, opts);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    child.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code: code ?? -1, stdout, stderr });
    });
  });
}

/** A running etcdctl whose stdout is collected line by line. */
export interface EtcdctlProcess {
  readonly child: ChildProcess;
  /** Every stdout line so far, in order. */
  readonly lines: readonly string[];
  /** stderr so far. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 2 s; resolves when the process is gone. */
  stop(): Promise<void>;
}

interface LineState {
  readonly lines: string[];
  /** Index of the first line readLines has not consumed yet. */
  cursor: number;
  stderr: string;
  exited: boolean;
  readonly waiters: Set<() => void>;
}

const states = new WeakMap<EtcdctlProcess, LineState>();

/** Starts a long-running etcdctl command (e.g. `watch --prefix /a`); stop() it when done. */
export function spawnEtcdctl(args: readonly string[], opts: Omit<EtcdctlOptions, 'timeoutMs'>): EtcdctlProcess {
  const child = start(args, opts);
  const state: LineState = { lines: [], cursor: 0, stderr: '', exited: false, waiters: new Set() };
  const notify = () => {
    for (const w of [...state.waiters]) w();
  };
  let partial = '';
  child.stdout?.setEncoding('utf8').on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop() ?? '';
    state.lines.push(...parts);
    notify();
  });
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (state.stderr += s));
  child.once('error', (err) => {
    state.stderr += String(err);
  });
  child.once('close', () => {
    if (partial !== '') state.lines.push(partial);
    partial = '';
    state.exited = true;
    notify();
  });

  const handle: EtcdctlProcess = {
    child,
    lines: state.lines,
    stderr: () => state.stderr,
    stop: async () => {
      if (state.exited) return;
      const gone = new Promise<void>((r) => child.once('close', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
      await gone;
      clearTimeout(timer);
    },
  };
  states.set(handle, state);
  return handle;
}

/**
 * Waits until a stdout line matching `predicate` appears, looking only at lines not
 * consumed by an earlier readLines call on the same process. Resolves with the lines
 * consumed (from the previous position up to and including the match). Rejects if
 * etcdctl exits first or `timeoutMs` passes, quoting its stderr.
 */
export function readLines(
  proc: EtcdctlProcess,
  predicate: (line: string) => boolean,
  timeoutMs = 10_000,
): Promise<string[]> {
  const state = states.get(proc);
  if (state === undefined) return Promise.reject(new Error('not a process from spawnEtcdctl()'));
  return new Promise((resolve, reject) => {
    const check = () => {
      for (let i = state.cursor; i < state.lines.length; i++) {
        if (predicate(state.lines[i] ?? '')) {
          const taken = state.lines.slice(state.cursor, i + 1);
          state.cursor = i + 1;
          finish();
          resolve(taken);
          return;
        }
      }
      if (state.exited) {
        finish();
        reject(new Error(`etcdctl exited before the expected line; stderr: ${state.stderr.trim()}`));
      }
    };
    const timer = setTimeout(() => {
      finish();
      reject(new Error(`no matching etcdctl line within ${timeoutMs} ms; stderr: ${state.stderr.trim()}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      state.waiters.delete(check);
    };
    state.waiters.add(check);
    check();
  });
}
