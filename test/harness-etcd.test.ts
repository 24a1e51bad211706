/**
 * Proves the integration-test harness against a real etcd: the generated PKI is
 * accepted and an unrelated CA refused by etcd, etcdctl and etcd3 helpers read what they
 * write, long-running etcdctl output can be awaited line by line, stop() closes the
 * ports and removes the data, and a 3-member static cluster forms.
 */
import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import { startEtcd } from './support/etcd.js';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl, readLines, spawnEtcdctl } from './support/etcdctl.js';
import { makePki } from './support/pki.js';
import { useGatewayStack } from './support/stack.js';

/** Resolves with the socket error code, or 'connected'. */
function tryConnect(url: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const socket = connect({ host: hostname, port: Number(port) });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'));
  });
}

describe('test harness with a 1-member etcd', () => {
  const stack = useGatewayStack({ gateway: false });
  let endpoint: string;

  beforeAll(() => {
    endpoint = stack.etcd.endpoints[0] ?? '';
  });

  const as = (pair: { cert: string; key: string }, ca?: string) => ({
    endpoint,
    cert: pair.cert,
    key: pair.key,
    cacert: ca ?? stack.pki.ca,
  });

  it('knows exactly the client certificates generate.sh makes', () => {
    expect(existsSync(stack.pki.client('tenant-a').cert)).toBe(true);
    expect(existsSync(stack.pki.client('rogue').key)).toBe(true);
    expect(() => stack.pki.client('mallory')).toThrow(/unknown client/);
  });

  it('puts and gets a key with etcdctl using the upstream client certificate', async () => {
    const put = await etcdctl(['put', '/harness/k1', 'v1'], as(stack.pki.upstreamClient));
    expect(put.code, put.stderr).toBe(0);
    expect(put.stdout.trim()).toBe('OK');

    const get = await etcdctl(['get', '/harness/k1', '--print-value-only'], as(stack.pki.upstreamClient));
    expect(get.code, get.stderr).toBe(0);
    expect(get.stdout.trim()).toBe('v1');
  });

  it('refuses a client certificate issued by another CA', async () => {
    const rogue = await etcdctl(['get', '/harness/k1'], { ...as(stack.pki.client('rogue')), timeoutMs: 4_000 });
    expect(rogue.code).not.toBe(0);
    expect(rogue.stdout).not.toContain('v1');
    // Refused at the TLS handshake, not by some later check.
    const log = await readFile(stack.etcd.members[0]?.logFile ?? '', 'utf8');
    expect(log).toContain('certificate signed by unknown authority');

    // The same command with a certificate from the trusted CA goes through.
    const tenant = await etcdctl(['get', '/harness/k1', '--print-value-only'], as(stack.pki.client('tenant-a')));
    expect(tenant.code, tenant.stderr).toBe(0);
    expect(tenant.stdout.trim()).toBe('v1');
  });

  it('reads back through the etcd3 npm client', async () => {
    const client = etcd3Client(endpoint, stack.pki, 'tenant-b');
    try {
      await client.put('/harness/k2').value('v2');
      expect(await client.get('/harness/k2').string()).toBe('v2');
    } finally {
      client.close();
    }
  });

  it('awaits lines of a long-running etcdctl watch', async () => {
    const watch = spawnEtcdctl(['watch', '--prefix', '/harness/w/'], as(stack.pki.upstreamClient));
    try {
      // The watch is registered asynchronously: keep writing until an event shows up.
      const seen = readLines(watch, (line) => line === 'PUT', 15_000);
      const writer = (async () => {
        for (let i = 0; i < 20 && watch.lines.length === 0; i++) {
          await etcdctl(['put', '/harness/w/a', 'w1'], as(stack.pki.upstreamClient));
          await new Promise((r) => setTimeout(r, 250));
        }
      })();
      expect(await seen).toEqual(['PUT']);
      expect(await readLines(watch, (line) => line === 'w1')).toEqual(['/harness/w/a', 'w1']);
      await writer;
    } finally {
      await watch.stop();
    }
  });

  it('stop() closes the client port and removes the data', async () => {
    expect(await tryConnect(endpoint)).toBe('connected');
    await stack.etcd.stop();
    expect(await tryConnect(endpoint)).toBe('ECONNREFUSED');
    expect(existsSync(stack.etcd.dir)).toBe(false);
  });
});

describe('test harness with a 3-member etcd', () => {
  it('forms a static 3-member cluster', async () => {
    const pki = await makePki();
    const etcd = await startEtcd(pki, { clusterSize: 3 });
    try {
      expect(etcd.endpoints).toHaveLength(3);
      const list = await etcdctl(['member', 'list', '-w', 'simple'], {
        endpoint: etcd.endpoints[1] ?? '',
        cert: pki.upstreamClient.cert,
        key: pki.upstreamClient.key,
        cacert: pki.ca,
      });
      expect(list.code, list.stderr).toBe(0);
      const rows = list.stdout.trim().split('\n');
      expect(rows).toHaveLength(3);
      expect(rows.every((r) => r.includes(', started, '))).toBe(true);
    } finally {
      await etcd.stop();
      await pki.remove();
    }
  });
});
