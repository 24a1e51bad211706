/**
 * The processes a benchmark run measures: one etcd member, etcdgate instances (as child
 * processes, so their CPU time is their own), and etcd's Go grpc-proxy when the etcd
 * binary has it. All on loopback, all over mutual TLS with a fresh development PKI.
 */
import { execFile, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import path from 'node:path';
import { promisify } from 'node:util';
import { stringify } from 'yaml';

const run = promisify(execFile);
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Files of the generated PKI that the run needs. */
export interface BenchPki {
  readonly ca: string;
  readonly etcdServer: { cert: string; key: string };
  readonly gateServer: { cert: string; key: string };
  readonly upstreamClient: { cert: string; key: string };
  /** The client every load generator presents (CN kube-apiserver-etcd-client). */
  readonly client: { cert: string; key: string };
  /** A client the benchmark policy binds to nothing (for the cache's denial check). */
  readonly nobody: { cert: string; key: string };
}

/** A process the run measures. */
export interface Measured {
  readonly name: string;
  readonly pid: number;
  /** host:port clients dial. */
  readonly address: string;
  stop(): Promise<void>;
}

/** Runs certs-dev/generate.sh into `dir`. */
export async function makePki(root: string, dir: string): Promise<BenchPki> {
  await run('bash', [path.join(root, 'certs-dev/generate.sh'), dir]);
  const pair = (base: string): { cert: string; key: string } => ({ cert: path.join(dir, `${base}.crt`), key: path.join(dir, `${base}.key`) });
  return {
    ca: path.join(dir, 'ca.crt'),
    etcdServer: pair('etcd-server'),
    gateServer: pair('etcdgate-server'),
    upstreamClient: pair('upstream-client'),
    client: pair('client-kube-apiserver'),
    nobody: pair('client-nobody'),
  };
}

/** A loopback port that was free a moment ago. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0, exclusive: true }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** CPU seconds (user + system) a process has used, from /proc/PID/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / clockTicks();
}

let ticksPerSecond: number | undefined;
function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    const out = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    ticksPerSecond = Number(out.stdout.trim()) || 100;
  }
  return ticksPerSecond;
}

/** Resident set size of a process, bytes, from /proc/PID/status. */
export function rssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const match = /^VmRSS:\s+(\d+) kB/mu.exec(status);
  return match?.[1] === undefined ? 0 : Number(match[1]) * 1024;
}

function track(child: ChildProcess, name: string, address: string): Measured {
  if (child.pid === undefined) throw new Error(`${name} did not start`);
  const pid = child.pid;
  let stopped: Promise<void> | undefined;
  return {
    name,
    pid,
    address,
    stop: () =>
      (stopped ??= new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
        child.once('exit', () => {
          clearTimeout(timer);
          resolve();
        });
        child.kill('SIGTERM');
      })),
  };
}

function spawnLogged(command: string, args: readonly string[], logFile: string): ChildProcess {
  const log = openSync(logFile, 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', log, log] });
    child.on('error', () => undefined);
    return child;
  } finally {
    closeSync(log);
  }
}

/** Waits until something accepts TLS on `port` (a cheap readiness signal for etcd and grpc-proxy). */
async function waitPort(port: number, child: ChildProcess, name: string, logFile: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited:\n${readFileSync(logFile, 'utf8').slice(-2000)}`);
    const open = await new Promise<boolean>((resolve) => {
      const socket = new Socket();
      socket.once('connect', () => {
        socket.destroy();
        resolve(true);
      });
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1');
    });
    if (open) return;
    if (Date.now() > deadline) throw new Error(`${name} did not listen in time`);
    await sleep(100);
  }
}

/** Starts one etcd member with mTLS on its client port. */
export async function startEtcd(dir: string, pki: BenchPki): Promise<Measured> {
  const clientPort = await freePort();
  const peerPort = await freePort();
  const logFile = path.join(dir, 'etcd.log');
  const child = spawnLogged(
    process.env['ETCD_BIN'] ?? 'etcd',
    [
      '--name=bench',
      `--data-dir=${path.join(dir, 'etcd.data')}`,
      `--listen-client-urls=https://127.0.0.1:${clientPort}`,
      `--advertise-client-urls=https://127.0.0.1:${clientPort}`,
      `--listen-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-advertise-peer-urls=http://127.0.0.1:${peerPort}`,
      `--initial-cluster=bench=http://127.0.0.1:${peerPort}`,
      '--client-cert-auth',
      `--trusted-ca-file=${pki.ca}`,
      `--cert-file=${pki.etcdServer.cert}`,
      `--key-file=${pki.etcdServer.key}`,
      `--quota-backend-bytes=${4 * 1024 ** 3}`,
      '--logger=zap',
      '--log-outputs=stderr',
    ],
    logFile,
  );
  await waitPort(clientPort, child, 'etcd', logFile);
  return track(child, 'etcd', `127.0.0.1:${clientPort}`);
}

/** Whether `etcd grpc-proxy start` exists in the installed etcd. */
export function grpcProxyAvailable(): boolean {
  const out = spawnSync(process.env['ETCD_BIN'] ?? 'etcd', ['grpc-proxy', 'start', '--help'], { encoding: 'utf8' });
  return out.status === 0 && out.stdout.includes('--listen-addr');
}

/** Starts etcd's grpc-proxy in front of `etcd`, with the same TLS setup etcdgate gets. */
export async function startGrpcProxy(dir: string, pki: BenchPki, etcd: Measured): Promise<Measured> {
  const port = await freePort();
  const logFile = path.join(dir, 'grpc-proxy.log');
  const child = spawnLogged(
    process.env['ETCD_BIN'] ?? 'etcd',
    [
      'grpc-proxy',
      'start',
      `--endpoints=${etcd.address}`,
      `--listen-addr=127.0.0.1:${port}`,
      `--advertise-client-url=127.0.0.1:${port}`,
      `--data-dir=${path.join(dir, 'grpc-proxy.data')}`,
      `--cacert=${pki.ca}`,
      `--cert=${pki.upstreamClient.cert}`,
      `--key=${pki.upstreamClient.key}`,
      `--trusted-ca-file=${pki.ca}`,
      `--cert-file=${pki.gateServer.cert}`,
      `--key-file=${pki.gateServer.key}`,
      '--max-send-bytes=2147483647',
    ],
    logFile,
  );
  await waitPort(port, child, 'grpc-proxy', logFile);
  // The listener opens before the upstream connection is up; give it a moment.
  await sleep(500);
  return track(child, 'grpc-proxy', `127.0.0.1:${port}`);
}

/** What differs between the etcdgate instances of one run. */
export interface GatewayVariant {
  readonly name: string;
  readonly audit: boolean;
  readonly cache: boolean;
  /** Extra node flags (e.g. --cpu-prof). */
  readonly nodeArgs?: readonly string[];
  /** Another build's main.js (A/B of an optimization); default this tree's dist/src/main.js. */
  readonly main?: string;
  /** Extra top-level config sections. */
  readonly extra?: Readonly<Record<string, unknown>>;
}

/** Starts `node dist/src/main.js --config FILE` and resolves once it logs its port. */
export async function startGateway(root: string, dir: string, pki: BenchPki, etcd: Measured, policyFile: string, variant: GatewayVariant, logDir: string): Promise<Measured> {
  const main = variant.main ?? path.join(root, 'dist/src/main.js');
  if (!existsSync(main)) throw new Error(`${main} is missing: run npm run build first`);
  const home = path.join(dir, variant.name);
  await mkdir(home, { recursive: true });
  const configFile = path.join(home, 'etcdgate.yaml');
  const document: Record<string, unknown> = {
    server: {
      listen: '127.0.0.1:0',
      advertiseClientUrls: ['https://127.0.0.1:2379'],
      tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca },
    },
    upstream: { endpoints: [`https://${etcd.address}`], tls: { ca: pki.ca, cert: pki.upstreamClient.cert, key: pki.upstreamClient.key } },
    admin: { listen: '127.0.0.1:0' },
    audit: variant.audit ? { sink: `file:${path.join(home, 'audit.jsonl')}` } : { sink: `file:${path.join(home, 'audit.jsonl')}`, level: 'none' },
    log: { level: 'info' },
    policy: policyFile,
  };
  if (variant.cache) document['cache'] = { serializableRange: { enabled: true, maxEntries: 10_000, maxStalenessMs: 1000 } };
  Object.assign(document, variant.extra);
  await writeFile(configFile, stringify(document), { mode: 0o600 });
  const logFile = path.join(logDir, `${variant.name}.log`);
  const child = spawn(process.execPath, [...(variant.nodeArgs ?? []), main, '--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'], cwd: home });
  child.on('error', () => undefined);
  const port = await new Promise<number>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`etcdgate ${variant.name} did not start:\n${text.slice(-2000)}`)), 30_000);
    child.stderr?.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      const match = /"port":(\d+).*etcdgate listening|etcdgate listening.*?"port":(\d+)/u.exec(text);
      const found = match?.[1] ?? match?.[2];
      if (found !== undefined) {
        clearTimeout(timer);
        resolve(Number(found));
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`etcdgate ${variant.name} exited (${code}):\n${text.slice(-2000)}`));
    });
  });
  // Keep draining stderr into a file so the pipe never fills.
  child.stderr?.removeAllListeners('data');
  const log = openSync(logFile, 'w');
  child.stderr?.on('data', (chunk: Buffer) => {
    try {
      writeSync(log, chunk);
    } catch {
      // the log is best-effort
    }
  });
  return track(child, variant.name, `127.0.0.1:${port}`);
}
