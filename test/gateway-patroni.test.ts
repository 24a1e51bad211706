/**
 * Patroni (Debian's `patroni`, its etcd3 DCS) runs a PostgreSQL node (Debian's
 * `postgresql`) through etcdgate's JSON gateway over HTTPS with a client certificate:
 * its identity is the certificate's CN, bound to a role that may write Patroni's
 * namespace. The node bootstraps and holds the leader key. A second Patroni node whose
 * certificate is bound to a read-only role on the namespace is refused: it cannot
 * register itself, and the leader stays the first node. Patroni speaks only the JSON
 * gateway (/version, /v3/cluster/member/list, kv, lease grant and keepalive, watch).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir, userInfo } from 'node:os';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { curl } from './support/curl.js';
import { valueInEtcd } from './support/enforcement.js';
import type { TestGateway } from './support/gateway.js';
import { freePort } from './support/ports.js';
import { rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const NAMESPACE = '/service/';
const SCOPE = 'pgtest';
const PREFIX = `${NAMESPACE}${SCOPE}/`;

/** Debian's PostgreSQL binaries (/usr/lib/postgresql/<major>/bin), the newest installed. */
function postgresBin(): string {
  const majors = readdirSync('/usr/lib/postgresql', { withFileTypes: true }).filter((entry) => entry.isDirectory() && /^\d+$/u.test(entry.name)).map((entry) => Number(entry.name));
  const newest = Math.max(...majors);
  if (!Number.isFinite(newest)) throw new Error('no PostgreSQL under /usr/lib/postgresql: install Debian\'s postgresql (scripts/ensure-deps.sh test)');
  return `/usr/lib/postgresql/${newest}/bin`;
}

const POLICY = {
  roles: {
    patroni: { keys: [{ prefix: PREFIX, access: 'readwrite' }], capabilities: ['lease'] },
    'patroni-reader': { keys: [{ prefix: PREFIX, access: 'read' }], capabilities: ['lease'] },
    root: { keys: [{ all: true, access: 'readwrite' }], capabilities: ['admin'] },
  },
  bindings: [
    { match: { cn: 'tenant-a' }, roles: ['patroni'] },
    { match: { cn: 'tenant-b' }, roles: ['patroni-reader'] },
    { match: { cn: 'root' }, roles: ['root'] },
  ],
};

const stack = useGatewayStack({ gateway: false });
let gate: TestGateway;
let dir: string;
let direct: grpc.Client;
const children: { child: ChildProcess; home: string }[] = [];

/** The postgres account PostgreSQL must run as (it refuses root). */
function postgresUser(): { uid: number; gid: number } {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((entry) => entry.startsWith('postgres:'));
  const [, , uid, gid] = line?.split(':') ?? [];
  if (uid === undefined || gid === undefined) throw new Error('no postgres user: install Debian\'s postgresql (scripts/ensure-deps.sh test)');
  return { uid: Number(uid), gid: Number(gid) };
}

beforeAll(async () => {
  // etcdgate listens where it advertises: Patroni talks to the clientURLs MemberList gives.
  const port = await freePort();
  gate = await stack.startGateway({
    policy: POLICY,
    overrides: { server: { listen: `127.0.0.1:${port}`, advertiseClientUrls: [`https://127.0.0.1:${port}`] } },
  });
  direct = rawClient(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-patroni-'));
  // The nodes' folders inside are the postgres user's; it must be able to reach them.
  chmodSync(dir, 0o711);
});

/** Stops Patroni (SIGTERM: it stops PostgreSQL itself), SIGKILL after 20 s, then any postmaster left by its pid file. */
async function stopNode(child: ChildProcess, home: string): Promise<void> {
  if (child.exitCode === null && child.signalCode === null) {
    // 'exit', not 'close': PostgreSQL's processes inherit Patroni's stdout and may hold it open.
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(timer);
  }
  let pid: number | undefined;
  try {
    pid = Number(readFileSync(path.join(home, 'data', 'postmaster.pid'), 'utf8').split('\n')[0]);
  } catch {
    return;
  }
  if (pid !== undefined && Number.isInteger(pid) && pid > 1) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
}

afterAll(async () => {
  await Promise.all(children.map(({ child, home }) => stopNode(child, home)));
  direct?.close();
  await gate?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/** Writes node `name`'s config (certificate of `client`) into its own folder owned by postgres; returns the config path. */
async function nodeConfig(name: string, client: string): Promise<string> {
  const { uid, gid } = postgresUser();
  const home = path.join(dir, name);
  mkdirSync(home, { mode: 0o700 });
  const cert = stack.pki.client(client);
  for (const [from, to] of [[stack.pki.ca, 'ca.crt'], [cert.cert, 'client.crt'], [cert.key, 'client.key']] as const) copyFileSync(from, path.join(home, to));
  const [restPort, pgPort] = [await freePort(), await freePort()];
  const config = {
    scope: SCOPE,
    namespace: NAMESPACE,
    name,
    log: { level: 'INFO' },
    restapi: { listen: `127.0.0.1:${restPort}`, connect_address: `127.0.0.1:${restPort}` },
    etcd3: {
      hosts: `127.0.0.1:${gate.gateway.port}`,
      protocol: 'https',
      cacert: path.join(home, 'ca.crt'),
      cert: path.join(home, 'client.crt'),
      key: path.join(home, 'client.key'),
    },
    bootstrap: {
      dcs: { ttl: 20, loop_wait: 2, retry_timeout: 5, postgresql: { use_pg_rewind: false } },
      initdb: [{ encoding: 'UTF8' }, 'data-checksums'],
    },
    postgresql: {
      listen: `127.0.0.1:${pgPort}`,
      connect_address: `127.0.0.1:${pgPort}`,
      data_dir: path.join(home, 'data'),
      bin_dir: postgresBin(),
      pgpass: path.join(home, 'pgpass'),
      authentication: { superuser: { username: 'postgres', password: 'pg-secret' }, replication: { username: 'replicator', password: 'rep-secret' } },
      parameters: { unix_socket_directories: home },
      pg_hba: ['local all all trust', 'host all all 127.0.0.1/32 md5', 'host replication replicator 127.0.0.1/32 md5'],
    },
  };
  const file = path.join(home, 'patroni.yml');
  // JSON is YAML: Patroni reads it as is.
  await writeFile(file, JSON.stringify(config, null, 2));
  for (const entry of ['', 'ca.crt', 'client.crt', 'client.key', 'patroni.yml']) chownSync(path.join(home, entry), uid, gid);
  return file;
}

/** Starts Patroni as the postgres user; its log goes to <node>/patroni.log. */
function startPatroni(config: string): { log: () => string } {
  const { uid, gid } = postgresUser();
  const logFile = path.join(path.dirname(config), 'patroni.log');
  const child = spawn('patroni', [config], {
    uid,
    gid,
    cwd: path.dirname(config),
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: path.dirname(config), LANG: 'C.UTF-8' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push({ child, home: path.dirname(config) });
  let text = '';
  const append = (chunk: Buffer): void => {
    text += chunk.toString('utf8');
  };
  child.stdout?.on('data', append);
  child.stderr?.on('data', append);
  child.once('close', () => void writeFile(logFile, text).catch(() => undefined));
  return { log: () => text };
}

describe('Patroni through the JSON gateway', () => {
  it('runs as root here, so it can start PostgreSQL as the postgres user', () => {
    expect(userInfo().uid, 'the Patroni test needs root (to run PostgreSQL as postgres), as CI has').toBe(0);
  });

  it('a node bootstraps PostgreSQL and holds the leader key, identified by its certificate', async () => {
    const node1 = startPatroni(await nodeConfig('node1', 'tenant-a'));
    await vi.waitFor(async () => expect(await valueInEtcd(direct, `${PREFIX}leader`), node1.log().slice(-3000)).toBe('node1'), { timeout: 120_000, interval: 1000 });
    expect(await valueInEtcd(direct, `${PREFIX}initialize`)).toMatch(/^\d+$/u);
    const member = JSON.parse((await valueInEtcd(direct, `${PREFIX}members/node1`)) ?? '{}') as { role?: string; state?: string };
    expect(member.role).toBe('master');
    // The lease keeps being renewed through /v3/lease/keepalive: the leader key stays.
    await vi.waitFor(async () => {
      const records = await gate.auditRecords();
      const keepalives = records.filter((r) => (r['event'] as { action?: string }).action === 'etcd.lease.lease_keep_alive' && (r['user'] as { name?: string }).name === 'tenant-a');
      expect(keepalives.length).toBeGreaterThanOrEqual(2);
      for (const record of keepalives) expect(record).toMatchObject({ network: { protocol: 'http' } });
    }, { timeout: 60_000, interval: 1000 });
    expect(await valueInEtcd(direct, `${PREFIX}leader`)).toBe('node1');
    // What Patroni's etcd3 DCS uses of the gateway (besides GET /version, which is not an etcd call).
    // Calls only: connection records (opened, closed) carry no URL.
    const paths = new Set((await gate.auditRecords()).filter((r) => r['etcd'] !== undefined && (r['user'] as { name?: string }).name === 'tenant-a').map((r) => (r['url'] as { path?: string } | undefined)?.path));
    expect([...paths].sort()).toEqual(['/v3/cluster/member/list', '/v3/kv/deleterange', '/v3/kv/put', '/v3/kv/range', '/v3/kv/txn', '/v3/lease/grant', '/v3/lease/keepalive', '/v3/watch'].filter((p) => paths.has(p)));
    for (const needed of ['/v3/cluster/member/list', '/v3/kv/range', '/v3/kv/txn', '/v3/lease/grant', '/v3/lease/keepalive', '/v3/watch']) expect(paths, needed).toContain(needed);
  }, 240_000);

  it('a second node whose certificate may only read the namespace is refused, and the leader stays', async () => {
    const node2 = startPatroni(await nodeConfig('node2', 'tenant-b'));
    await vi.waitFor(() => expect(node2.log()).toMatch(/permission denied/iu), { timeout: 90_000, interval: 500 });
    expect(await valueInEtcd(direct, `${PREFIX}members/node2`)).toBeUndefined();
    expect(await valueInEtcd(direct, `${PREFIX}leader`)).toBe('node1');
    const records = await gate.auditRecords();
    const refused = records.filter((r) => (r['user'] as { name?: string }).name === 'tenant-b' && (r['etcd'] as { decision?: { allowed: boolean } } | undefined)?.decision?.allowed === false);
    expect(refused.length).toBeGreaterThan(0);
    // The same identity with curl: reading is allowed, writing is not.
    const read = await curl(`${gate.endpoint}/v3/kv/range`, { ca: stack.pki.ca, client: stack.pki.client('tenant-b'), body: JSON.stringify({ key: Buffer.from(`${PREFIX}leader`).toString('base64') }) });
    expect(read.status).toBe(200);
    const write = await curl(`${gate.endpoint}/v3/kv/put`, { ca: stack.pki.ca, client: stack.pki.client('tenant-b'), body: JSON.stringify({ key: Buffer.from(`${PREFIX}leader`).toString('base64'), value: 'eA==' }) });
    expect(write.status).toBe(403);
  }, 150_000);
});
