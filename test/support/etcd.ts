/**
 * Real etcd for integration tests: starts Debian's etcd binary (or $ETCD_BIN) on free
 * loopback ports with mutual TLS on the client and peer ports, waits until it answers a
 * linearizable read, and tears it down again. Each cluster lives in its own temp dir
 * (data and logs); etcd's log goes to `<dir>/<member>.log`, never to the test output.
 */
import * as grpc from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { MethodDefinition } from '@grpc/proto-loader';
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Pki } from './pki.js';
import { freePort } from './ports.js';

/** One etcd process; stop/start keep its data dir, so a restarted member rejoins. */
export interface EtcdMember {
  readonly name: string;
  /** https://127.0.0.1:PORT */
  readonly clientUrl: string;
  /** etcd's log file (zap JSON lines), kept until the cluster is stopped. */
  readonly logFile: string;
  /** The running process's id (for /proc samples); undefined while stopped. */
  readonly pid: number | undefined;
  /** SIGTERM, then SIGKILL after 5 s. No-op when not running. */
  stop(): Promise<void>;
  /** SIGKILL: the member dies at once, mid-stream (a crash, not a shutdown). No-op when not running. */
  kill(): Promise<void>;
  /** Restarts a stopped member and waits until it serves linearizable reads. */
  start(): Promise<void>;
}

/** A running test cluster. */
export interface EtcdCluster {
  /** Client URLs of every member, https://127.0.0.1:PORT. */
  readonly endpoints: readonly string[];
  readonly members: readonly EtcdMember[];
  /** Temp dir holding data dirs and logs (removed by stop()). */
  readonly dir: string;
  /**
   * Plans one more member (ports, data dir) without starting it: announce its peer URL to
   * the cluster with `member add`, then its start() joins the cluster (state "existing").
   * stop() of the cluster stops it too.
   */
  planMember(): Promise<PlannedMember>;
  /** Kills every member and removes the temp dir. Safe to call twice. */
  stop(): Promise<void>;
}

/** A member planned by planMember(): its peer URL is what `member add` needs. */
export interface PlannedMember extends EtcdMember {
  readonly peerUrl: string;
}

export interface StartEtcdOptions {
  readonly clusterSize?: 1 | 3;
}

const HEALTH_TIMEOUT_MS = 30_000;
const KILL_GRACE_MS = 5_000;
/** Attempts at a whole cluster start; a port taken between probe and bind makes etcd exit. */
const START_ATTEMPTS = 3;

// Processes and dirs to clean up if the test process exits without calling stop().
// 'exit' covers process.exit(); the watchdogs below cover signals and crashes.
const live = new Set<ChildProcess>();
const liveDirs = new Set<string>();
let exitHookInstalled = false;

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: SIGKILL is the only reliable choice here.
  process.on('exit', () => {
    for (const child of live) child.kill('SIGKILL');
    for (const dir of liveDirs) rmSync(dir, { recursive: true, force: true });
  });
}

/**
 * A tiny `sh` that blocks reading a pipe only this process writes to. When this process
 * dies in any way (vitest ends its workers with SIGTERM, which skips 'exit' handlers),
 * the pipe closes and the script runs its clean-up on `arg`. Returns a disarm function
 * for the normal path. The watchdog does not keep the event loop alive.
 */
function watchdog(script: string, arg: string): () => void {
  const w = spawn('sh', ['-c', `read -r _; ${script}`, 'etcdgate-watchdog', arg], {
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  w.on('error', () => undefined);
  w.unref();
  if (w.stdin instanceof Socket) w.stdin.unref();
  return () => {
    // Kill first so a closed pipe can never trigger the clean-up on the normal path.
    w.kill('SIGKILL');
    w.stdin?.destroy();
  };
}

const KILL_PID = 'kill -KILL "$1" 2>/dev/null';
const REMOVE_DIR = 'sleep 1; rm -rf "$1"';

let rangeMethod: MethodDefinition<object, object> | undefined;

/** KV.Range from etcdgate's own protos, loaded once on first use. */
function range(): MethodDefinition<object, object> {
  if (rangeMethod === undefined) {
    const protos = fileURLToPath(new URL('../../protos/', import.meta.url));
    const pkg = loadSync(['etcdserverpb/rpc.proto'], { includeDirs: [protos], keepCase: true });
    const kv = pkg['etcdserverpb.KV'] as Record<string, MethodDefinition<object, object>> | undefined;
    const method = kv?.['Range'];
    if (method === undefined) throw new Error('etcdserverpb.KV/Range missing from protos/');
    rangeMethod = method;
  }
  return rangeMethod;
}

/** One linearizable Range as the upstream client: succeeds only with a leader and quorum. */
function probe(clientUrl: string, pki: Pki): Promise<boolean> {
  const method = range();
  const credentials = grpc.credentials.createSsl(
    readFileSync(pki.ca),
    readFileSync(pki.upstreamClient.key),
    readFileSync(pki.upstreamClient.cert),
  );
  // SNI with an IP is deprecated in Node; the server certificate also names localhost.
  const client = new grpc.Client(new URL(clientUrl).host, credentials, {
    'grpc.ssl_target_name_override': 'localhost',
  });
  return new Promise((resolve) => {
    client.makeUnaryRequest(
      method.path,
      method.requestSerialize,
      method.responseDeserialize,
      { key: Buffer.from('etcdgate-health') },
      new grpc.Metadata(),
      { deadline: Date.now() + 2_000 },
      (err) => {
        client.close();
        resolve(err === null);
      },
    );
  });
}

/** The process died before becoming healthy (e.g. its port was taken meanwhile): worth a retry. */
class EtcdExitedError extends Error {
  override readonly name = 'EtcdExitedError';
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

async function logTail(file: string): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').slice(-15).join('\n');
}

/** Sends SIGTERM, then SIGKILL after the grace period, and resolves once the process is gone. */
async function terminate(child: ChildProcess): Promise<void> {
  if (!exited(child)) {
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), KILL_GRACE_MS);
    await gone;
    clearTimeout(timer);
  }
  live.delete(child);
}

interface MemberPlan {
  readonly name: string;
  readonly clientUrl: string;
  readonly peerUrl: string;
  readonly dataDir: string;
  readonly logFile: string;
}

function etcdArgs(m: MemberPlan, initialCluster: string, pki: Pki, state: 'new' | 'existing' = 'new'): string[] {
  return [
    `--name=${m.name}`,
    `--data-dir=${m.dataDir}`,
    `--listen-client-urls=${m.clientUrl}`,
    `--advertise-client-urls=${m.clientUrl}`,
    `--listen-peer-urls=${m.peerUrl}`,
    `--initial-advertise-peer-urls=${m.peerUrl}`,
    `--initial-cluster=${initialCluster}`,
    `--initial-cluster-state=${state}`,
    '--initial-cluster-token=etcdgate-test',
    '--client-cert-auth',
    `--trusted-ca-file=${pki.ca}`,
    `--cert-file=${pki.etcdServer.cert}`,
    `--key-file=${pki.etcdServer.key}`,
    '--peer-client-cert-auth',
    `--peer-trusted-ca-file=${pki.ca}`,
    `--peer-cert-file=${pki.etcdServer.cert}`,
    `--peer-key-file=${pki.etcdServer.key}`,
    `--quota-backend-bytes=${2 * 1024 ** 3}`,
    '--max-request-bytes=33554432',
    '--logger=zap',
    '--log-outputs=stderr',
  ];
}

/** A member whose process is (re)spawned from a fixed plan. */
class Member implements EtcdMember {
  private child: ChildProcess | undefined;

  constructor(
    private readonly plan: MemberPlan,
    private readonly args: readonly string[],
    private readonly bin: string,
    private readonly pki: Pki,
  ) {}

  get name(): string {
    return this.plan.name;
  }

  get clientUrl(): string {
    return this.plan.clientUrl;
  }

  get logFile(): string {
    return this.plan.logFile;
  }

  get pid(): number | undefined {
    return this.child === undefined || exited(this.child) ? undefined : this.child.pid;
  }

  /** Starts the process without waiting for health. */
  spawn(): void {
    if (this.child !== undefined && !exited(this.child)) return;
    const log = openSync(this.plan.logFile, 'a');
    try {
      this.child = spawn(this.bin, this.args, { stdio: ['ignore', log, log] });
    } finally {
      closeSync(log);
    }
    const child = this.child;
    live.add(child);
    const disarm = child.pid === undefined ? () => undefined : watchdog(KILL_PID, String(child.pid));
    child.once('exit', () => {
      live.delete(child);
      disarm();
    });
    // A missing binary surfaces as 'error'; waitHealthy then reports the exit.
    child.on('error', () => undefined);
  }

  /** Throws with the log tail if the process has died. */
  async assertAlive(): Promise<void> {
    if (this.child === undefined || exited(this.child)) {
      const code = this.child?.exitCode ?? this.child?.signalCode ?? 'not started';
      throw new EtcdExitedError(`etcd member ${this.name} exited (${code}):\n${await logTail(this.plan.logFile)}`);
    }
  }

  async waitHealthy(deadline: number): Promise<void> {
    for (;;) {
      await this.assertAlive();
      if (await probe(this.clientUrl, this.pki)) return;
      if (Date.now() > deadline) {
        throw new Error(`etcd member ${this.name} not healthy in time:\n${await logTail(this.plan.logFile)}`);
      }
      await sleep(200);
    }
  }

  async start(): Promise<void> {
    this.spawn();
    await this.waitHealthy(Date.now() + HEALTH_TIMEOUT_MS);
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child !== undefined) await terminate(child);
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || exited(child)) return;
    const gone = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGKILL');
    await gone;
    live.delete(child);
  }
}

async function memberPlan(name: string, dir: string): Promise<MemberPlan> {
  return {
    name,
    clientUrl: `https://127.0.0.1:${await freePort()}`,
    peerUrl: `https://127.0.0.1:${await freePort()}`,
    dataDir: path.join(dir, `${name}.data`),
    logFile: path.join(dir, `${name}.log`),
  };
}

async function startOnce(pki: Pki, size: number, bin: string, dir: string): Promise<{ members: Member[]; plans: MemberPlan[] }> {
  const plans: MemberPlan[] = [];
  for (let i = 0; i < size; i++) plans.push(await memberPlan(`etcd-${i}`, dir));
  const initialCluster = plans.map((p) => `${p.name}=${p.peerUrl}`).join(',');
  const members = plans.map((p) => new Member(p, etcdArgs(p, initialCluster, pki), bin, pki));
  try {
    for (const m of members) m.spawn();
    const deadline = Date.now() + HEALTH_TIMEOUT_MS;
    for (const m of members) await m.waitHealthy(deadline);
    return { members, plans };
  } catch (err: unknown) {
    // A failed attempt leaves half-bootstrapped data dirs; the next attempt needs clean ones.
    await Promise.all(members.map((m) => m.stop()));
    await Promise.all(plans.map((p) => rm(p.dataDir, { recursive: true, force: true })));
    throw err;
  }
}

/**
 * Starts a 1- or 3-member etcd cluster (static bootstrap) trusting `pki.ca` on both the
 * client and peer ports, and resolves once every member serves linearizable reads.
 */
export async function startEtcd(pki: Pki, opts: StartEtcdOptions = {}): Promise<EtcdCluster> {
  installExitHook();
  const size = opts.clusterSize ?? 1;
  const bin = process.env['ETCD_BIN'] ?? 'etcd';
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-etcd-'));
  liveDirs.add(dir);
  const disarmDir = watchdog(REMOVE_DIR, dir);

  let members: Member[] | undefined;
  let plans: MemberPlan[] = [];
  let lastError: unknown;
  for (let attempt = 1; attempt <= START_ATTEMPTS && members === undefined; attempt++) {
    try {
      ({ members, plans } = await startOnce(pki, size, bin, dir));
    } catch (err: unknown) {
      lastError = err;
      if (!(err instanceof EtcdExitedError)) break;
    }
  }
  if (members === undefined) {
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    disarmDir();
    throw lastError instanceof Error ? lastError : new Error(String(lastError));
  }

  const started = members;
  const added: Member[] = [];
  let stopped: Promise<void> | undefined;
  return {
    endpoints: started.map((m) => m.clientUrl),
    members: started,
    dir,
    async planMember(): Promise<PlannedMember> {
      const plan = await memberPlan(`etcd-${plans.length + added.length}`, dir);
      const initialCluster = [...plans, plan].map((p) => `${p.name}=${p.peerUrl}`).join(',');
      const member = new Member(plan, etcdArgs(plan, initialCluster, pki, 'existing'), bin, pki);
      added.push(member);
      return Object.assign(member, { peerUrl: plan.peerUrl });
    },
    stop(): Promise<void> {
      stopped ??= (async () => {
        try {
          await Promise.all([...started, ...added].map((m) => m.stop()));
        } finally {
          liveDirs.delete(dir);
          await rm(dir, { recursive: true, force: true });
          disarmDir();
        }
      })();
      return stopped;
    },
  };
}

/** A cluster started from a snapshot, and what `etcdctl snapshot restore` printed. */
export interface RestoredEtcd extends Omit<EtcdCluster, 'planMember'> {
  readonly restoreOutput: string;
}

/**
 * The restore an operator does: `etcdctl snapshot restore FILE` into a new data dir (a
 * new one-member cluster, as etcd's disaster-recovery guide does it), then an etcd
 * member started on that dir, trusting `pki.ca` like startEtcd's members. Resolves once
 * it serves linearizable reads; stop() kills it and removes its dir.
 */
export async function startRestoredEtcd(pki: Pki, snapshot: string): Promise<RestoredEtcd> {
  installExitHook();
  const bin = process.env['ETCD_BIN'] ?? 'etcd';
  const etcdctlBin = process.env['ETCDCTL_BIN'] ?? 'etcdctl';
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-restored-'));
  liveDirs.add(dir);
  const disarmDir = watchdog(REMOVE_DIR, dir);
  const plan: MemberPlan = {
    name: 'restored-0',
    clientUrl: `https://127.0.0.1:${await freePort()}`,
    peerUrl: `https://127.0.0.1:${await freePort()}`,
    dataDir: path.join(dir, 'restored-0.data'),
    logFile: path.join(dir, 'restored-0.log'),
  };
  const initialCluster = `${plan.name}=${plan.peerUrl}`;
  let member: Member | undefined;
  const cleanUp = async (): Promise<void> => {
    await member?.stop();
    liveDirs.delete(dir);
    await rm(dir, { recursive: true, force: true });
    disarmDir();
  };
  let restoreOutput: string;
  try {
    const { stdout, stderr } = await promisify(execFile)(
      etcdctlBin,
      ['snapshot', 'restore', snapshot, `--name=${plan.name}`, `--data-dir=${plan.dataDir}`, `--initial-cluster=${initialCluster}`, `--initial-advertise-peer-urls=${plan.peerUrl}`, '--initial-cluster-token=etcdgate-restored'],
      { env: { ...process.env, ETCDCTL_API: '3' } },
    );
    restoreOutput = `${stdout}${stderr}`;
    member = new Member(plan, etcdArgs(plan, initialCluster, pki), bin, pki);
    await member.start();
  } catch (err: unknown) {
    await cleanUp();
    throw err;
  }
  const started = member;
  let stopped: Promise<void> | undefined;
  return {
    endpoints: [plan.clientUrl],
    members: [started],
    dir,
    restoreOutput,
    stop: () => (stopped ??= cleanUp()),
  };
}
