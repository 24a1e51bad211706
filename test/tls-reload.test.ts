/**
 * Certificate lifecycle without restart: etcdgate notices new files on disk (polled, so
 * rename-replace works) and SIGHUP's reloadTls(), and
 *  - a rotated server certificate is what new handshakes see, while a watch stream
 *    opened before the rotation keeps delivering events;
 *  - a broken file keeps the old material, is counted as a failed reload, and new
 *    handshakes still get the old certificate;
 *  - a CRL rewritten to revoke tenant-a refuses tenant-a's new handshakes (reason
 *    revoked) and still accepts tenant-b;
 *  - new upstream client credentials are used by new upstream calls (a certificate etcd
 *    does not trust makes them fail) while the old channels keep the open watch alive.
 */
import { copyFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from './support/etcd-messages.js';
import type { TestGateway } from './support/gateway.js';
import type { CertPair } from './support/pki.js';
import { testCa, type TestCa } from './support/pki-variants.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { callEtcd, collectWatch, rawClient, rawWatch } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';
import { probeTls } from './support/tls-probe.js';

const stack = useGatewayStack({ gateway: false });
let ca: TestCa;
/** The files the gateway under test is configured with (copies, rewritten by the tests). */
const live = { cert: '', key: '', crl: '', upstreamCert: '', upstreamKey: '' };
let gate: TestGateway;

/** Replaces `target` the way certificate tools do: write a temp file, rename it over. */
async function replace(target: string, source: string): Promise<void> {
  const temp = `${target}.new`;
  await copyFile(source, temp);
  await rename(temp, target);
}

async function reloads(result: 'success' | 'failure'): Promise<number> {
  const text = await (await fetch(`${gate.adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), 'etcdgate_tls_reloads_total', { result });
}

async function eventually<T>(what: string, probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms (last: ${JSON.stringify(value)})`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

const gatePort = (): number => Number(new URL(gate.endpoint).port);

beforeAll(async () => {
  ca = await testCa(stack.pki);
  live.cert = path.join(stack.pki.dir, 'live-server.crt');
  live.key = path.join(stack.pki.dir, 'live-server.key');
  live.crl = path.join(stack.pki.dir, 'live.crl');
  live.upstreamCert = path.join(stack.pki.dir, 'live-upstream.crt');
  live.upstreamKey = path.join(stack.pki.dir, 'live-upstream.key');
  await copyFile(stack.pki.gateServer.cert, live.cert);
  await copyFile(stack.pki.gateServer.key, live.key);
  await copyFile(stack.pki.upstreamClient.cert, live.upstreamCert);
  await copyFile(stack.pki.upstreamClient.key, live.upstreamKey);
  await ca.crl([], live.crl);
  gate = await stack.startGateway({
    overrides: {
      server: { tls: { cert: live.cert, key: live.key, clientCA: stack.pki.ca, crl: live.crl } },
      upstream: { tls: { ca: stack.pki.ca, cert: live.upstreamCert, key: live.upstreamKey } },
    },
  });
}, 60_000);

afterAll(async () => {
  await gate?.stop();
});

describe('server certificate rotation', () => {
  let rotated: CertPair;

  it('new handshakes see the new certificate; a watch opened before keeps working', async () => {
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    try {
      const before = await probeTls(gatePort(), stack.pki, stack.pki.client('root'));
      expect(before.served).toBe(true);
      const stream = rawWatch(client);
      const created = collectWatch(stream, (rs) => rs.some((r) => r['created'] === true));
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/rotate/'), range_end: Buffer.from('/rotate0') } }));
      await created;
      const successes = await reloads('success');

      rotated = await ca.issue({ name: 'rotated-server', cn: 'etcdgate-server', eku: 'serverAuth', san: 'DNS:localhost, IP:127.0.0.1' });
      await replace(live.key, rotated.key);
      await replace(live.cert, rotated.cert);
      const after = await eventually('new server certificate', () => probeTls(gatePort(), stack.pki, stack.pki.client('root')), (r) => r.serverSerial !== before.serverSerial);
      expect(after.served).toBe(true);
      expect(await reloads('success')).toBeGreaterThan(successes);

      const event = collectWatch(stream, (rs) => rs.some((r) => Array.isArray(r['events']) && r['events'].length > 0));
      await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from('/rotate/after'), value: Buffer.from('v') }], 'PutResponse');
      const events = (await event).flatMap((r) => (r['events'] as { kv: { key: Buffer } }[] | undefined) ?? []);
      expect(events.map((e) => e.kv.key.toString())).toContain('/rotate/after');
      stream.cancel();
    } finally {
      client.close();
    }
  }, 40_000);

  it('a broken certificate file keeps the old material and is counted as a failure', async () => {
    const current = await probeTls(gatePort(), stack.pki, stack.pki.client('root'));
    const failures = await reloads('failure');
    await writeFile(live.cert, 'this is not a certificate\n');
    await eventually('failed reload counted', () => reloads('failure'), (n) => n > failures);
    expect(gate.gateway.reloadTls()).toBe(false);
    const still = await probeTls(gatePort(), stack.pki, stack.pki.client('root'));
    expect(still).toMatchObject({ served: true, serverSerial: current.serverSerial });
    // A key that does not match the certificate is refused the same way.
    await copyFile(rotated.cert, live.cert);
    await copyFile(stack.pki.client('root').key, live.key);
    expect(gate.gateway.reloadTls()).toBe(false);
    expect((await probeTls(gatePort(), stack.pki, stack.pki.client('root'))).serverSerial).toBe(current.serverSerial);
    await copyFile(rotated.key, live.key);
    expect(gate.gateway.reloadTls()).toBe(true);
  }, 30_000);
});

describe('CRL reload', () => {
  it('a CRL that now revokes tenant-a refuses its new handshakes, tenant-b still gets in', async () => {
    expect((await probeTls(gatePort(), stack.pki, stack.pki.client('tenant-a'))).served).toBe(true);
    const next = path.join(stack.pki.dir, 'next.crl');
    await ca.crl([stack.pki.client('tenant-a').cert], next);
    await replace(live.crl, next);
    await eventually('tenant-a refused', () => probeTls(gatePort(), stack.pki, stack.pki.client('tenant-a')), (r) => !r.served);
    const refused = await probeTls(gatePort(), stack.pki, stack.pki.client('tenant-a'));
    const records = await gate.auditRecords();
    const record = records.find((r) => (r['source'] as { port: number }).port === refused.localPort);
    expect(record).toMatchObject({ event: { reason: 'revoked' }, tls: { client: { x509: { subject: { common_name: ['tenant-a'] } } } }, etcdgate: { identity_verified: false } });
    expect(record?.['user']).toBeUndefined();
    expect((await probeTls(gatePort(), stack.pki, stack.pki.client('tenant-b'))).served).toBe(true);
  }, 30_000);

  it('a CRL file that does not parse keeps the previous CRL in force', async () => {
    await writeFile(live.crl, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n');
    expect(gate.gateway.reloadTls()).toBe(false);
    expect((await probeTls(gatePort(), stack.pki, stack.pki.client('tenant-a'))).served).toBe(false);
    expect((await probeTls(gatePort(), stack.pki, stack.pki.client('tenant-b'))).served).toBe(true);
  });
});

describe('upstream credentials reload', () => {
  it('new upstream calls use the new client certificate; an open watch stays on the old channels', async () => {
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    const put = (key: string): Promise<Record<string, unknown>> =>
      callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse');
    // The previous test left a broken CRL; a reload is all-or-nothing, so fix that first.
    await replace(live.crl, path.join(stack.pki.dir, 'next.crl'));
    try {
      await put('/upstream/before');
      const stream = rawWatch(client);
      const created = collectWatch(stream, (rs) => rs.some((r) => r['created'] === true));
      stream.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/upstream/'), range_end: Buffer.from('/upstream0') } }));
      await created;

      // A client certificate from a CA etcd does not trust: new upstream connections fail.
      const rogue = stack.pki.client('rogue');
      await replace(live.upstreamKey, rogue.key);
      await replace(live.upstreamCert, rogue.cert);
      expect(gate.gateway.reloadTls()).toBe(true);
      const failed = await put('/upstream/rogue').then(
        () => undefined,
        (error: grpc.ServiceError) => error,
      );
      expect(failed?.code).toBe(grpc.status.UNAVAILABLE);

      // Back to a trusted one: calls work again, on new channels.
      await replace(live.upstreamKey, stack.pki.upstreamClient.key);
      await replace(live.upstreamCert, stack.pki.upstreamClient.cert);
      expect(gate.gateway.reloadTls()).toBe(true);
      await eventually('upstream calls work again', () => put('/upstream/after').then(() => true, () => false), Boolean);

      // The watch opened before both swaps still delivers.
      // Wait for this key's event: the event of '/upstream/after' may still be on its way.
      const eventKeys = (rs: Record<string, unknown>[]): string[] =>
        rs.flatMap((r) => ((r['events'] as { kv: { key: Buffer } }[] | undefined) ?? []).map((e) => e.kv.key.toString()));
      const events = collectWatch(stream, (rs) => eventKeys(rs).includes('/upstream/watched'));
      await put('/upstream/watched');
      expect(eventKeys(await events)).toContain('/upstream/watched');
      stream.cancel();
    } finally {
      client.close();
    }
  }, 40_000);
});
