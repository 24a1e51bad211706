/**
 * Certificates etcdgate must refuse at the handshake: none, from an unknown CA, expired,
 * not yet valid, revoked by the configured CRL, for server use only (serverAuth EKU),
 * and without any extended key usage. Each is closed before a single byte of gRPC is
 * served, leaves a `handshake.refused` audit record naming the reason, and raises
 * etcdgate_tls_handshake_failures_total for that reason. A good certificate is served,
 * over TLS 1.3 by default; with minVersion TLSv1.3 a TLS 1.2-only client is refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestGateway, type TestGateway } from './support/gateway.js';
import { makePki, type CertPair, type Pki } from './support/pki.js';
import { caDate, testCa } from './support/pki-variants.js';
import { freePort } from './support/ports.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { probeTls } from './support/tls-probe.js';
import path from 'node:path';

let pki: Pki;
let gate: TestGateway;
let strict: TestGateway;
const made: Record<string, CertPair> = {};

beforeAll(async () => {
  pki = await makePki();
  const ca = await testCa(pki);
  const day = 86_400_000;
  made['expired'] = await ca.issue({ name: 'expired', cn: 'expired-client', eku: 'clientAuth', startDate: '20200101000000Z', endDate: '20200201000000Z' });
  made['future'] = await ca.issue({ name: 'future', cn: 'future-client', eku: 'clientAuth', startDate: caDate(new Date(Date.now() + 10 * day)), endDate: caDate(new Date(Date.now() + 40 * day)) });
  made['no-eku'] = await ca.issue({ name: 'no-eku', cn: 'no-eku-client', eku: null });
  const crl = await ca.crl([pki.client('tenant-a').cert], path.join(pki.dir, 'revoked.crl'));
  // No etcd: handshakes never reach the upstream.
  const upstream = [`https://127.0.0.1:${await freePort()}`];
  gate = await startTestGateway({ pki, upstream, overrides: { server: { tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca, crl } } } });
  strict = await startTestGateway({ pki, upstream, overrides: { server: { tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca, minVersion: 'TLSv1.3' } } } });
});

afterAll(async () => {
  await gate?.stop();
  await strict?.stop();
  await pki?.remove();
});

async function failures(target: TestGateway, reason: string): Promise<number> {
  const text = await (await fetch(`${target.adminUrl}/metrics`)).text();
  return sampleValue(parseExposition(text), 'etcdgate_tls_handshake_failures_total', { reason });
}

interface RefusalRecord {
  event: { category: string[]; reason: string; outcome: string };
  source: { port: number };
  user?: { name: string };
  tls?: { client: { x509: { subject: { common_name?: string[] } } } };
  etcdgate: { event_kind: string; identity_verified?: boolean };
}

async function refusalFrom(target: TestGateway, port: number): Promise<RefusalRecord | undefined> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const records = (await target.auditRecords()) as unknown as RefusalRecord[];
    const found = records.find((r) => r.etcdgate.event_kind === 'handshake.refused' && r.source.port === port);
    if (found !== undefined || Date.now() > deadline) return found;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const portOf = (target: TestGateway): number => Number(new URL(target.endpoint).port);

describe('refused at the handshake, audited and counted', () => {
  it.each([
    { name: 'no certificate', pair: (): CertPair | undefined => undefined, reason: 'no_certificate', user: undefined },
    { name: 'an unknown CA', pair: (): CertPair | undefined => pki.client('rogue'), reason: 'unknown_ca', user: 'tenant-a' },
    { name: 'an expired certificate', pair: (): CertPair | undefined => made['expired'], reason: 'expired', user: 'expired-client' },
    { name: 'a certificate not yet valid', pair: (): CertPair | undefined => made['future'], reason: 'not_yet_valid', user: 'future-client' },
    { name: 'a certificate revoked by the CRL', pair: (): CertPair | undefined => pki.client('tenant-a'), reason: 'revoked', user: 'tenant-a' },
    { name: 'a serverAuth-only certificate', pair: (): CertPair | undefined => pki.gateServer, reason: 'bad_usage', user: 'etcdgate-server' },
    { name: 'a certificate without extended key usage', pair: (): CertPair | undefined => made['no-eku'], reason: 'bad_usage', user: 'no-eku-client' },
  ])('$name', async ({ pair, reason, user }) => {
    const before = await failures(gate, reason);
    const result = await probeTls(portOf(gate), pki, pair());
    expect(result.served).toBe(false);
    const record = await refusalFrom(gate, result.localPort);
    expect(record?.event).toMatchObject({ category: ['authentication'], reason, outcome: 'failure' });
    // A refused certificate is never the user: what it claims is marked unverified.
    expect(record?.user).toBeUndefined();
    expect(record?.tls?.client.x509.subject.common_name?.[0]).toBe(user);
    expect(record?.etcdgate.identity_verified).toBe(user === undefined ? undefined : false);
    expect(await failures(gate, reason)).toBe(before + 1);
  });

  it('serves a good certificate not on the CRL, over TLS 1.3 by default', async () => {
    const result = await probeTls(portOf(gate), pki, pki.client('tenant-b'));
    expect(result.served).toBe(true);
    expect(result.protocol).toBe('TLSv1.3');
  });

  it('still accepts TLS 1.2 by default', async () => {
    const result = await probeTls(portOf(gate), pki, pki.client('tenant-b'), { maxVersion: 'TLSv1.2' });
    expect(result).toMatchObject({ served: true, protocol: 'TLSv1.2' });
  });

  it('with minVersion TLSv1.3, refuses a TLS 1.2-only client and counts it', async () => {
    const before = await failures(strict, 'protocol');
    const old = await probeTls(portOf(strict), pki, pki.client('tenant-b'), { maxVersion: 'TLSv1.2' });
    expect(old.served).toBe(false);
    expect(old.protocol).toBe('');
    expect(await refusalFrom(strict, old.localPort)).toMatchObject({ event: { reason: 'protocol' } });
    expect(await failures(strict, 'protocol')).toBe(before + 1);
    const current = await probeTls(portOf(strict), pki, pki.client('tenant-b'));
    expect(current).toMatchObject({ served: true, protocol: 'TLSv1.3' });
  });
});
