/**
 * Refused TLS handshakes are audited and counted: no client certificate, a certificate
 * from another CA (client-rogue, which claims CN tenant-a), and an expired certificate
 * signed by the trusted CA each leave an `authentication` record with the client's
 * address and port and whatever the certificate claimed, and raise
 * etcdgate_tls_handshake_failures_total for their reason.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as tls from 'node:tls';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CertPair } from './support/pki.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { useGatewayStack } from './support/stack.js';

const run = promisify(execFile);

const stack = useGatewayStack();
let expiredDir: string;
let expired: CertPair;

/**
 * A client certificate (CN expired-client) signed by the test CA, valid only in January
 * 2020. `openssl x509 -req` cannot backdate; `openssl ca` takes explicit start and end dates.
 */
async function makeExpiredCertificate(): Promise<CertPair> {
  expiredDir = await mkdtemp(path.join(tmpdir(), 'etcdgate-expired-'));
  const file = (name: string): string => path.join(expiredDir, name);
  await writeFile(file('index.txt'), '');
  await writeFile(file('serial'), '1000\n');
  await writeFile(
    file('ca.cnf'),
    [
      '[ca]',
      'default_ca = test_ca',
      '[test_ca]',
      `database = ${file('index.txt')}`,
      `new_certs_dir = ${expiredDir}`,
      `serial = ${file('serial')}`,
      'default_md = sha256',
      'policy = any_name',
      'x509_extensions = client',
      'unique_subject = no',
      '[any_name]',
      'commonName = supplied',
      '[client]',
      'basicConstraints = critical, CA:FALSE',
      'keyUsage = critical, digitalSignature, keyEncipherment',
      'extendedKeyUsage = clientAuth',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, OPENSSL_CONF: '/dev/null' };
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('client.key')], { env });
  await run('openssl', ['req', '-new', '-key', file('client.key'), '-subj', '/CN=expired-client', '-out', file('client.csr')], { env });
  await run(
    'openssl',
    ['ca', '-batch', '-notext', '-config', file('ca.cnf'), '-cert', stack.pki.ca, '-keyfile', stack.pki.caKey,
      '-startdate', '20200101000000Z', '-enddate', '20200201000000Z', '-in', file('client.csr'), '-out', file('client.crt')],
    { env },
  );
  return { cert: file('client.crt'), key: file('client.key') };
}

beforeAll(async () => {
  expired = await makeExpiredCertificate();
});

afterAll(async () => {
  if (expiredDir !== undefined) await rm(expiredDir, { recursive: true, force: true });
});

/**
 * Connects with the given certificate (or none) and waits until etcdgate ends the
 * connection; returns the client's own port, which the record must name as source.port.
 * With TLS 1.3 the client's side of the handshake may complete before the server
 * refuses, so the refusal can arrive as an error or as a plain close.
 */
function attempt(pair: CertPair | undefined, maxVersion: tls.SecureVersion = 'TLSv1.3'): Promise<number> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host: '127.0.0.1',
      port: Number(new URL(stack.gate.endpoint).port),
      servername: 'localhost',
      ca: readFileSync(stack.pki.ca),
      ALPNProtocols: ['h2'],
      maxVersion,
      ...(pair === undefined ? {} : { cert: readFileSync(pair.cert), key: readFileSync(pair.key) }),
    });
    let port = 0;
    socket.once('connect', () => {
      port = socket.localPort ?? 0;
    });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error('etcdgate did not end the refused connection'));
    }, 10_000);
    socket.on('error', () => undefined);
    socket.once('close', () => {
      clearTimeout(timer);
      resolve(port);
    });
  });
}

async function failures(reason: string): Promise<number> {
  const text = await (await fetch(`${stack.gate.adminUrl}/metrics`)).text();
  const value = sampleValue(parseExposition(text), 'etcdgate_tls_handshake_failures_total', { reason });
  return Number.isNaN(value) ? 0 : value;
}

interface HandshakeRecord {
  event: { category: string[]; type: string[]; action: string; outcome: string; reason: string };
  source: { ip: string; port: number };
  user?: { name: string };
  error?: { message: string };
  tls?: { client: { x509: { subject: { common_name?: string[] }; issuer?: { distinguished_name: string } } } };
  etcdgate: { event_kind: string; identity_verified?: boolean };
}

async function recordFrom(port: number): Promise<HandshakeRecord | undefined> {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const records = (await stack.gate.auditRecords()) as unknown as HandshakeRecord[];
    const found = records.find((r) => r.etcdgate.event_kind === 'handshake.refused' && r.source.port === port);
    if (found !== undefined || Date.now() > deadline) return found;
    await new Promise((r) => setTimeout(r, 50));
  }
}

const common = {
  event: { category: ['authentication'], type: ['start', 'denied'], action: 'etcdgate.tls.handshake', outcome: 'failure' },
  source: { ip: '127.0.0.1' },
};

describe('refused handshakes', () => {
  it.each([
    { name: 'no client certificate', pair: (): CertPair | undefined => undefined, reason: 'no_certificate', user: undefined, issuer: undefined },
    { name: 'a certificate from another CA', pair: (): CertPair | undefined => stack.pki.client('rogue'), reason: 'unknown_ca', user: 'tenant-a', issuer: 'CN=unrelated dev CA' },
    { name: 'an expired certificate', pair: (): CertPair | undefined => expired, reason: 'expired', user: 'expired-client', issuer: 'CN=etcdgate dev CA' },
  ])('$name: an authentication record and a failure count for its reason', async ({ pair, reason, user, issuer }) => {
    const before = await failures(reason);
    const port = await attempt(pair());
    expect(port).toBeGreaterThan(0);
    const record = await recordFrom(port);
    expect(record).toMatchObject({ ...common, event: { ...common.event, reason }, source: { ...common.source, port } });
    expect(record?.error?.message).toEqual(expect.any(String));
    if (user === undefined) {
      expect(record?.user).toBeUndefined();
      expect(record?.tls).toBeUndefined();
    } else {
      // Not verified, so never the user: the claimed name is under tls.client, marked so.
      expect(record?.user).toBeUndefined();
      expect(record?.etcdgate.identity_verified).toBe(false);
      expect(record?.tls?.client.x509.subject.common_name).toEqual([user]);
      expect(record?.tls?.client.x509.issuer?.distinguished_name).toBe(issuer);
    }
    expect(await failures(reason)).toBe(before + 1);
  });

  it('over TLS 1.2 too: a rogue certificate is refused, recorded and counted', async () => {
    const before = await failures('unknown_ca');
    const port = await attempt(stack.pki.client('rogue'), 'TLSv1.2');
    const record = await recordFrom(port);
    expect(record).toMatchObject({ ...common, event: { ...common.event, reason: 'unknown_ca' }, etcdgate: { identity_verified: false } });
    expect(record?.user).toBeUndefined();
    expect(record?.tls?.client.x509.subject.common_name).toEqual(['tenant-a']);
    expect(await failures('unknown_ca')).toBe(before + 1);
  });
});
