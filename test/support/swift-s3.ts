/**
 * A real S3-compatible server for tests: OpenStack Swift from Debian's packages (proxy,
 * account, container and object servers, one replica on one device in a temp dir)
 * with its `s3api` middleware and `tempauth`, plus the memcached that tempauth keeps
 * its tokens in, all on free loopback ports. Starts in a few seconds; stop() kills
 * every process and removes the dir. S3 credentials: access key `test:tester`, secret
 * `testing` (tempauth's user `test:tester`).
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { freePort } from './ports.js';

const run = promisify(execFile);

export interface SwiftS3 {
  /** http://127.0.0.1:PORT, the S3 endpoint. */
  readonly endpoint: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly region: string;
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
let hookInstalled = false;

function serverConf(name: 'account' | 'container' | 'object', port: number, dir: string): string {
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
devices = ${dir}/node
mount_check = false
disable_fallocate = true
swift_dir = ${dir}
workers = 0
log_level = WARNING
[pipeline:main]
pipeline = ${name}-server
[app:${name}-server]
use = egg:swift#${name}
`;
}

function proxyConf(port: number, memcachedPort: number, dir: string): string {
  // [section name, entry point]: the filters of the pipeline besides cache, s3api and tempauth.
  const filters = [['catch_errors', 'catch_errors'], ['gatekeeper', 'gatekeeper'], ['healthcheck', 'healthcheck'], ['proxy-logging', 'proxy_logging'], ['listing_formats', 'listing_formats'], ['copy', 'copy'], ['slo', 'slo'], ['dlo', 'dlo']];
  return `[DEFAULT]
bind_ip = 127.0.0.1
bind_port = ${port}
swift_dir = ${dir}
workers = 0
log_level = WARNING
[pipeline:main]
pipeline = catch_errors gatekeeper healthcheck proxy-logging cache listing_formats s3api tempauth copy slo dlo proxy-logging proxy-server
[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
[filter:tempauth]
use = egg:swift#tempauth
user_test_tester = testing .admin
[filter:s3api]
use = egg:swift#s3api
location = us-east-1
[filter:cache]
use = egg:swift#memcache
memcache_servers = 127.0.0.1:${memcachedPort}
${filters.map(([section, egg]) => `[filter:${section}]\nuse = egg:swift#${egg}\n`).join('')}`;
}

/** Builds the three one-device rings with Swift's own RingBuilder (Debian's python3). */
async function buildRings(dir: string, ports: { account: number; container: number; object: number }): Promise<void> {
  const script = `
from swift.common.ring import RingBuilder
import sys
d = sys.argv[1]
for name, port in (('account', ${ports.account}), ('container', ${ports.container}), ('object', ${ports.object})):
    b = RingBuilder(10, 1, 1)
    b.add_dev({'id': 0, 'region': 1, 'zone': 1, 'ip': '127.0.0.1', 'port': port, 'device': 'd1', 'weight': 100, 'meta': ''})
    b.rebalance()
    b.get_ring().save('%s/%s.ring.gz' % (d, name))
`;
  await run('/usr/bin/python3', ['-c', script, dir]);
}

function start(command: string, args: readonly string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(command, args, { stdio: ['ignore', fd, fd] });
    live.add(child);
    child.once('exit', () => live.delete(child));
    child.on('error', () => undefined);
    return child;
  } finally {
    closeSync(fd);
  }
}

async function healthy(endpoint: string): Promise<boolean> {
  try {
    return (await fetch(`${endpoint}/healthcheck`)).ok;
  } catch {
    return false;
  }
}

/** Starts Swift with s3api on loopback; rejects (with the servers' logs) if it is not serving within 30 s. */
export async function startSwiftS3(): Promise<SwiftS3> {
  if (!hookInstalled) {
    hookInstalled = true;
    process.on('exit', () => {
      for (const child of live) child.kill('SIGKILL');
    });
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-swift-'));
  await mkdir(path.join(dir, 'node', 'd1'), { recursive: true });
  const ports = { account: await freePort(), container: await freePort(), object: await freePort(), proxy: await freePort(), memcached: await freePort() };
  await writeFile(path.join(dir, 'swift.conf'), '[swift-hash]\nswift_hash_path_suffix = etcdgate-test\nswift_hash_path_prefix = etcdgate-test\n[storage-policy:0]\nname = gold\ndefault = yes\n');
  for (const name of ['account', 'container', 'object'] as const) await writeFile(path.join(dir, `${name}-server.conf`), serverConf(name, ports[name], dir));
  await writeFile(path.join(dir, 'proxy-server.conf'), proxyConf(ports.proxy, ports.memcached, dir));
  await buildRings(dir, ports);

  const children: ChildProcess[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(
      children.map(
        (child) =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) return resolve();
            child.once('exit', () => resolve());
            child.kill('SIGTERM');
            setTimeout(() => child.kill('SIGKILL'), 3000).unref();
          }),
      ),
    );
    await rm(dir, { recursive: true, force: true });
  };
  const memcachedArgs = ['-l', '127.0.0.1', '-p', String(ports.memcached), '-U', '0', ...(process.getuid?.() === 0 ? ['-u', 'root'] : [])];
  children.push(start('memcached', memcachedArgs, path.join(dir, 'memcached.log')));
  for (const name of ['account', 'container', 'object', 'proxy'] as const) {
    children.push(start(`swift-${name}-server`, [path.join(dir, `${name}-server.conf`)], path.join(dir, `${name}.log`)));
  }
  const endpoint = `http://127.0.0.1:${ports.proxy}`;
  const deadline = Date.now() + 30_000;
  while (!(await healthy(endpoint))) {
    const dead = children.find((child) => child.exitCode !== null);
    if (dead !== undefined || Date.now() > deadline) {
      const logs = await Promise.all(['memcached', 'account', 'container', 'object', 'proxy'].map(async (name) => `${name}: ${(await readFile(path.join(dir, `${name}.log`), 'utf8').catch(() => '')).slice(-2000)}`));
      await stop();
      throw new Error(`Swift did not start:\n${logs.join('\n')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  return { endpoint, accessKeyId: 'test:tester', secretAccessKey: 'testing', region: 'us-east-1', stop };
}
