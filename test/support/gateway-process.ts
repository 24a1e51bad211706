/**
 * etcdgate as operators run it: `node dist/src/main.js --config FILE` in a child process,
 * with every byte of its stdout and stderr captured. For tests about what the process as
 * a whole writes (audit on stdout, logs on stderr) and how it reacts to signals. Needs
 * `npm run build` first (npm test's pretest does it).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify } from 'yaml';
import { ROOT_ONLY_POLICY } from './gateway.js';
import type { Pki } from './pki.js';

const MAIN = fileURLToPath(new URL('../../dist/src/main.js', import.meta.url));
const START_TIMEOUT_MS = 20_000;

/** How the child process ended. */
export interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

/** A running etcdgate child process. */
export interface GatewayProcess {
  readonly child: ChildProcess;
  /** Temp dir holding the config (and, by default, the audit file). */
  readonly dir: string;
  /** https://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly adminUrl: string;
  /** Everything the process wrote so far. */
  stdout(): string;
  stderr(): string;
  /** Resolves when the process has exited. */
  readonly exited: Promise<ProcessExit>;
  /** SIGTERM (then SIGKILL after 10 s) and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

export interface GatewayProcessOptions {
  readonly pki: Pki;
  readonly upstream: readonly string[];
  /** The `audit` section (required: the tests using this pick the sink). */
  readonly audit: Readonly<Record<string, unknown>>;
  /** log.level; must log at least `info`, since the listening line tells the ports. */
  readonly logLevel?: 'trace' | 'debug' | 'info';
  readonly policy?: unknown;
  /** A dir from gatewayDir() to use (so the audit file can be named before the start); default a fresh one. */
  readonly dir?: string;
  /** Extra environment variables for the process (added to this process's). */
  readonly env?: Readonly<Record<string, string>>;
  /** The `encryption` section (inline mapping or file path), if any. */
  readonly encryption?: unknown;
  /** A `backup` section, when the test is about backups. */
  readonly backup?: Readonly<Record<string, unknown>>;
  /** Keys merged into the `server` section, and a `limits` section (e.g. { limits: { idleTimeoutMs: 1000 } }). */
  readonly overrides?: { readonly server?: Readonly<Record<string, unknown>>; readonly limits?: Readonly<Record<string, unknown>> };
}

interface Listening {
  readonly port: number;
  readonly adminPort: number;
}

/** The ports from etcdgate's "etcdgate listening" log line, once it has been written. */
function listeningLine(stderr: string): Listening | undefined {
  for (const line of stderr.split('\n')) {
    if (!line.includes('etcdgate listening')) continue;
    try {
      const parsed = JSON.parse(line) as { port?: unknown; adminPort?: unknown };
      if (typeof parsed.port === 'number' && typeof parsed.adminPort === 'number') {
        return { port: parsed.port, adminPort: parsed.adminPort };
      }
    } catch {
      // Not a JSON log line: keep looking.
    }
  }
  return undefined;
}

/** Makes a temp dir for a gateway process (its config, and usually its audit file). */
export function gatewayDir(): Promise<string> {
  return mkdtemp(path.join(tmpdir(), 'etcdgate-proc-'));
}

/** Writes a config and starts `node dist/src/main.js --config FILE`; resolves once it listens. */
export async function startGatewayProcess(options: GatewayProcessOptions): Promise<GatewayProcess> {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
  const { pki } = options;
  const dir = options.dir ?? (await gatewayDir());
  const configFile = path.join(dir, 'etcdgate.yaml');
  const document = {
    server: {
      listen: '127.0.0.1:0',
      advertiseClientUrls: ['https://127.0.0.1:32379'],
      tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca },
      shutdownTimeoutMs: 3000,
      ...options.overrides?.server,
    },
    ...(options.overrides?.limits === undefined ? {} : { limits: options.overrides.limits }),
    upstream: {
      endpoints: [...options.upstream],
      tls: { ca: pki.ca, cert: pki.upstreamClient.cert, key: pki.upstreamClient.key },
    },
    admin: { listen: '127.0.0.1:0' },
    audit: options.audit,
    log: { level: options.logLevel ?? 'info' },
    ...(options.encryption === undefined ? {} : { encryption: options.encryption }),
    ...(options.backup === undefined ? {} : { backup: options.backup }),
    policy: options.policy ?? ROOT_ONLY_POLICY,
  };
  await writeFile(configFile, stringify(document), { mode: 0o600 });

  const child = spawn(process.execPath, [MAIN, '--config', configFile], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(options.env === undefined ? {} : { env: { ...process.env, ...options.env } }),
  });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
  child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
  const stdout = (): string => Buffer.concat(out).toString('utf8');
  const stderr = (): string => Buffer.concat(err).toString('utf8');
  const exited = new Promise<ProcessExit>((resolve) => {
    // 'close' (not 'exit'): fires after the pipes are drained, so nothing written is missed.
    child.once('close', (code, signal) => resolve({ code, signal }));
  });

  let stopped: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopped ??= (async () => {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        await exited;
        clearTimeout(timer);
      }
      await rm(dir, { recursive: true, force: true });
    })();
    return stopped;
  };

  const deadline = Date.now() + START_TIMEOUT_MS;
  let listening: Listening | undefined;
  let ended = false;
  void exited.then(() => {
    ended = true;
  });
  while ((listening = listeningLine(stderr())) === undefined) {
    if (ended || Date.now() > deadline) {
      await stop();
      throw new Error(`etcdgate did not start:\n${stderr().split('\n').slice(-20).join('\n')}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    child,
    dir,
    endpoint: `https://127.0.0.1:${listening.port}`,
    adminUrl: `http://127.0.0.1:${listening.adminPort}`,
    stdout,
    stderr,
    exited,
    stop,
  };
}
