/**
 * Connection and process lifecycle through etcdgate: a watch held open while the client
 * pings every 2 s (etcdctl's keepalive) is not cut; an upstream endpoint that is down is
 * skipped; a graceful stop ends streams with UNAVAILABLE so clients reconnect elsewhere.
 */
import * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { encode } from './support/etcd-messages.js';
import { etcdctl, readLines, spawnEtcdctl } from './support/etcdctl.js';
import { useGatewayStack } from './support/stack.js';
import { freePort } from './support/ports.js';
import { callEtcd, collectWatch, rawClient, rawWatch } from './support/raw-client.js';

const stack = useGatewayStack({ gateway: false });

describe('lifecycle', () => {
  it('keeps a watch open while the client pings every 2 s, past any ping-enforcement window', async () => {
    const gate = await stack.startGateway();
    const root = { endpoint: gate.endpoint, cacert: stack.pki.ca, ...stack.pki.client('root') };
    const watcher = spawnEtcdctl(['--keepalive-time=2s', '--keepalive-timeout=2s', 'watch', '/held'], root);
    try {
      // 16 s of idle stream is eight client pings: grpc-go servers send GOAWAY after three too-frequent ones.
      await new Promise((resolve) => setTimeout(resolve, 16_000));
      expect(watcher.child.exitCode).toBeNull();
      const seen = readLines(watcher, (line) => line === 'after-pings', 10_000);
      expect((await etcdctl(['put', '/held', 'after-pings'], root)).code).toBe(0);
      expect(await seen).toContain('/held');
    } finally {
      await watcher.stop();
      await gate.stop();
    }
  }, 40_000);

  it('skips an upstream endpoint that is down', async () => {
    const dead = `https://127.0.0.1:${await freePort()}`;
    const gate = await stack.startGateway({ upstream: [dead, ...stack.etcd.endpoints] });
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    try {
      const put = await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/failover'), value: Buffer.from('ok') }], 'PutResponse');
      expect(put['header']).toBeDefined();
      const got = await callEtcd(client, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/failover') }], 'RangeResponse');
      expect((got['kvs'] as { value: Buffer }[])[0]?.value.toString()).toBe('ok');
    } finally {
      client.close();
      await gate.stop();
    }
  });

  it('ends open watch streams with UNAVAILABLE on a graceful stop, and refuses new connections', async () => {
    const gate = await stack.startGateway();
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    try {
      const stream = rawWatch(client);
      const created = collectWatch(stream, (rs) => rs.some((r) => r['created'] === true));
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/stop/') } }));
      await created;
      const status = new Promise<grpc.StatusObject>((resolve) => stream.on('status', resolve));
      await gate.gateway.stop();
      expect((await status).code).toBe(grpc.status.UNAVAILABLE);
      const after = await etcdctl(['get', '/stop/'], { endpoint: gate.endpoint, cacert: stack.pki.ca, ...stack.pki.client('root'), timeoutMs: 3_000 });
      expect(after.code).not.toBe(0);
    } finally {
      client.close();
      await gate.stop();
    }
  });
});
