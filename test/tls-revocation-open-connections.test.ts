/**
 * Revocation that bites (issue 13.3): a certificate revoked, expired or no longer trusted
 * after its connection was opened loses that connection. Before, the CRL was rewritten
 * and reloaded ("TLS material reloaded") and the already-open connection then made 5 of
 * 5 successful writes (the issue's measurement, with etcdgate before this change).
 *
 * Here a real etcd sits behind etcdgate; grpc-js clients keep one connection each (a unary
 * call and an open watch on tenant-a's). Then:
 *  - the CRL is rewritten to revoke tenant-a and reloaded: tenant-a's watch ends, its next
 *    call on the same channel fails, the connection is gone (counted, audited
 *    `connection.revoked` with reason `revoked`), while tenant-b's connection keeps working;
 *  - a certificate whose notAfter passes while connected is closed then (reason `expired`);
 *  - a client CA bundle that no longer holds the issuer closes what it issued (`untrusted`).
 */
import { copyFile, rename } from 'node:fs/promises';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encode } from './support/etcd-messages.js';
import type { TestGateway } from './support/gateway.js';
import { caDate, testCa, type TestCa } from './support/pki-variants.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { callEtcd, collectWatch, rawClient, rawWatch } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import * as grpcJs from '@grpc/grpc-js';

const stack = useGatewayStack({ gateway: false });
let ca: TestCa;
let gate: TestGateway;
const live = { crl: '', clientCA: '' };
const opened: grpc.Client[] = [];

const POLICY = {
  roles: { writer: { keys: [{ prefix: '/revoke/', access: 'readwrite' }] } },
  bindings: [{ match: { cn: ['tenant-a', 'tenant-b', 'short-lived'] }, roles: ['writer'] }],
};

async function replace(target: string, source: string): Promise<void> {
  await copyFile(source, `${target}.new`);
  await rename(`${target}.new`, target);
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${gate.adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), name, labels);
}

const put = (client: grpc.Client, key: string): Promise<Record<string, unknown>> =>
  callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse');

/** A client for a certificate outside the PKI's client set. */
function clientFor(pair: { cert: string; key: string }): grpc.Client {
  const credentials = grpcJs.credentials.createSsl(readFileSync(stack.pki.ca), readFileSync(pair.key), readFileSync(pair.cert));
  const client = new grpcJs.Client(new URL(gate.endpoint).host, credentials, { 'grpc.ssl_target_name_override': 'localhost' });
  opened.push(client);
  return client;
}

function clientNamed(name: string): grpc.Client {
  const client = rawClient(gate.endpoint, stack.pki, name);
  opened.push(client);
  return client;
}

interface Revoked {
  event: { reason: string; action: string; outcome: string };
  user?: { name: string };
  source: { ip: string };
  etcdgate: { event_kind: string };
}

async function revokedRecords(): Promise<Revoked[]> {
  return ((await gate.auditRecords()) as unknown as Revoked[]).filter((r) => r.etcdgate.event_kind === 'connection.revoked');
}

beforeAll(async () => {
  ca = await testCa(stack.pki);
  live.crl = path.join(stack.pki.dir, 'open-connections.crl');
  live.clientCA = path.join(stack.pki.dir, 'open-connections-ca.crt');
  await ca.crl([], live.crl);
  await copyFile(stack.pki.ca, live.clientCA);
  gate = await stack.startGateway({
    policy: POLICY,
    overrides: { server: { tls: { cert: stack.pki.gateServer.cert, key: stack.pki.gateServer.key, clientCA: live.clientCA, crl: live.crl } } },
  });
}, 60_000);

afterAll(async () => {
  for (const client of opened) client.close();
  await gate?.stop();
});

describe('open connections are re-checked', () => {
  it('a CRL reload that revokes tenant-a ends its open watch and connection; tenant-b keeps working', async () => {
    const a = clientNamed('tenant-a');
    const b = clientNamed('tenant-b');
    await put(a, '/revoke/a/1');
    await put(b, '/revoke/b/1');
    const watch = rawWatch(a);
    await new Promise<void>((resolve) => {
      void collectWatch(watch, (rs) => rs.some((r) => r['created'] === true)).then(() => resolve());
      watch.write(encode('etcdserverpb.WatchRequest', { create_request: { key: Buffer.from('/revoke/a/'), range_end: Buffer.from('/revoke/a0') } }));
    });
    const watchEnded = new Promise<{ code?: number }>((resolve) => {
      watch.on('error', (error: { code?: number }) => resolve(error));
      watch.on('end', () => resolve({}));
    });
    const revokedBefore = await metric('etcdgate_tls_connections_revoked_total', { reason: 'revoked' });
    const connectionsBefore = await metric('etcdgate_client_connections');
    expect(connectionsBefore).toBeGreaterThanOrEqual(2);

    const next = path.join(stack.pki.dir, 'open-connections-next.crl');
    await ca.crl([stack.pki.client('tenant-a').cert], next);
    await replace(live.crl, next);
    expect(gate.gateway.reloadTls()).toBe(true);

    await watchEnded;
    await expect(put(a, '/revoke/a/2')).rejects.toMatchObject({ code: 14 });
    await expect.poll(() => metric('etcdgate_tls_connections_revoked_total', { reason: 'revoked' })).toBeGreaterThan(revokedBefore);
    expect(await metric('etcdgate_client_connections')).toBe(connectionsBefore - 1);
    const records = await revokedRecords();
    expect(records.find((r) => r.user?.name === 'tenant-a')).toMatchObject({
      event: { reason: 'revoked', action: 'etcdgate.tls.recheck', outcome: 'failure' },
      source: { ip: '127.0.0.1' },
    });
    expect(records.some((r) => r.user?.name === 'tenant-b')).toBe(false);
    // tenant-b's connection was left alone and still serves.
    await put(b, '/revoke/b/2');
  }, 40_000);

  it('a certificate whose notAfter passes while connected is closed then', async () => {
    const pair = await ca.issue({ name: 'short-lived', cn: 'short-lived', eku: 'clientAuth', endDate: caDate(new Date(Date.now() + 6_000)) });
    const client = clientFor(pair);
    await put(client, '/revoke/short/1');
    await expect.poll(async () => (await revokedRecords()).find((r) => r.user?.name === 'short-lived'), { timeout: 15_000, interval: 250 }).toMatchObject({ event: { reason: 'expired' } });
    await expect(put(client, '/revoke/short/2')).rejects.toMatchObject({ code: 14 });
    expect(await metric('etcdgate_tls_connections_revoked_total', { reason: 'expired' })).toBe(1);
  }, 30_000);

  it('a client CA bundle without the issuer closes the connections it issued, with a GOAWAY first', async () => {
    const b = clientNamed('tenant-b');
    await put(b, '/revoke/b/3');
    // A bare HTTP/2 session as tenant-b, to see the GOAWAY frame itself.
    const pair = stack.pki.client('tenant-b');
    const session = http2.connect(gate.endpoint, { ca: readFileSync(stack.pki.ca), cert: readFileSync(pair.cert), key: readFileSync(pair.key), servername: 'localhost' });
    session.on('error', () => undefined);
    await new Promise<void>((resolve) => session.once('remoteSettings', () => resolve()));
    const goaway = new Promise<number>((resolve) => session.once('goaway', (code: number) => resolve(code)));
    const closed = new Promise<void>((resolve) => session.once('close', () => resolve()));
    const before = await metric('etcdgate_tls_connections_revoked_total', { reason: 'untrusted' });
    await replace(live.clientCA, stack.pki.otherCa);
    expect(gate.gateway.reloadTls()).toBe(true);
    await expect.poll(() => metric('etcdgate_tls_connections_revoked_total', { reason: 'untrusted' })).toBeGreaterThan(before);
    await expect(put(b, '/revoke/b/4')).rejects.toMatchObject({ code: 14 });
    expect((await revokedRecords()).some((r) => r.user?.name === 'tenant-b' && r.event.reason === 'untrusted')).toBe(true);
    expect(await goaway).toBe(http2.constants.NGHTTP2_NO_ERROR);
    await closed;
  }, 30_000);
});
