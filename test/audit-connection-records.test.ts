/**
 * Lean call records and connection records (issue 17.13), through a real etcdgate: a
 * client's connection gets one `connection.open` record with its certificate in full and
 * the TLS version, every call on it names that connection (`etcdgate.connection_id`) and
 * carries only the certificate's searchable fields, and closing the connection writes
 * `connection.close` with its duration. A certificate whose subject needs escaping (a CN
 * holding ", O=", "+", quotes, a backslash) has its DN written escaped once (issue 13.6).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { b } from './support/enforcement.js';
import { type CertPair } from './support/pki.js';
import { issueWithSubject } from './support/pki-variants.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

/** tenant-a's name, with every character RFC 4514 makes a DN escape. */
const AWKWARD_CN = 'tenant-a, O=evil+x;"q"\\b';

const stack = useGatewayStack({
  policy: {
    roles: { tenant: { keys: [{ prefix: '/tenants/', access: 'readwrite' }] } },
    bindings: [{ match: { cn: ['tenant-a', 'tenant-a, *'] }, roles: ['tenant'] }],
  },
});
let awkward: CertPair;

beforeAll(async () => {
  // openssl's -subj (with -multivalue-rdn) takes "\\" as an escape, and "+" unescaped as an RDN separator.
  awkward = await issueWithSubject(stack.pki, 'client-awkward', `/O=tenants/CN=${AWKWARD_CN.replace('\\', '\\\\').replace('+', '\\+')}`);
});

type AuditRecord = Record<string, unknown> & {
  event: { action: string; type: string[]; duration?: number };
  user?: { name: string; roles?: string[] };
  tls?: { version?: string; client: { x509?: { subject?: Record<string, unknown>; serial_number?: string; issuer?: unknown; alternative_names?: string[] }; hash?: { sha256: string } } };
  etcd?: { request: { key?: string } };
  etcdgate: { event_kind: string; connection_id?: string };
};

async function recordsNow(): Promise<AuditRecord[]> {
  return (await stack.gate.auditRecords()) as unknown as AuditRecord[];
}

/** Two Puts on one new connection as client NAME (or with `pair`), then the connection closed. */
async function twoPutsThenClose(name: string, keys: readonly string[], pair?: CertPair): Promise<void> {
  const client: grpc.Client =
    pair === undefined
      ? rawClient(stack.gate.endpoint, stack.pki, name)
      : new grpc.Client(new URL(stack.gate.endpoint).host, grpc.credentials.createSsl(readFileSync(stack.pki.ca), readFileSync(pair.key), readFileSync(pair.cert)), {
          'grpc.ssl_target_name_override': 'localhost',
        });
  try {
    for (const key of keys) await callEtcd(client, 'KV', 'Put', ['PutRequest', { key: b(key), value: b('v') }], 'PutResponse');
  } finally {
    client.close();
  }
}

describe('connection records', () => {
  it('one open record holds the certificate in full; each call names the connection and carries only the searchable fields; close ends it', async () => {
    await twoPutsThenClose('tenant-a', ['/tenants/conn/1', '/tenants/conn/2']);
    let records: AuditRecord[] = [];
    await vi.waitFor(async () => {
      records = await recordsNow();
      expect(records.some((r) => r.etcdgate.event_kind === 'connection.close')).toBe(true);
    }, { timeout: 10_000, interval: 100 });
    const calls = records.filter((r) => r.etcd?.request.key?.startsWith('/tenants/conn/') === true);
    expect(calls).toHaveLength(2);
    const id = calls[0]?.etcdgate.connection_id;
    expect(id).toMatch(/^[0-9a-f]{12}-[0-9a-f]+$/u);
    expect(calls[1]?.etcdgate.connection_id).toBe(id);

    const open = records.filter((r) => r.etcdgate.event_kind === 'connection.open' && r.etcdgate.connection_id === id);
    expect(open).toHaveLength(1);
    expect(open[0]).toMatchObject({ event: { action: 'etcdgate.tls.connection', type: ['connection', 'start'] }, user: { name: 'tenant-a', roles: ['tenant'] }, tls: { version: '1.3' } });
    const full = open[0]?.tls?.client;
    expect(full?.x509?.serial_number).toMatch(/^[0-9A-F]+$/u);
    expect(full?.x509?.issuer).toEqual({ distinguished_name: 'CN=etcdgate dev CA' });
    expect(full?.x509?.subject?.['distinguished_name']).toBe('CN=tenant-a');

    for (const call of calls) {
      // Lean: the fields a search uses, the same fingerprint as the open record, nothing else of the certificate.
      expect(call.tls).toEqual({ client: { x509: { subject: { common_name: ['tenant-a'] }, alternative_names: ['spiffe://example.org/tenant/a'] }, hash: { sha256: full?.hash?.sha256 } } });
    }
    const close = records.filter((r) => r.etcdgate.event_kind === 'connection.close' && r.etcdgate.connection_id === id);
    expect(close).toHaveLength(1);
    expect(close[0]?.event.type).toEqual(['connection', 'end']);
    expect(close[0]?.event.duration).toBeGreaterThan(0);
  });

  it('two connections of one certificate get two ids', async () => {
    await twoPutsThenClose('tenant-a', ['/tenants/conn/a']);
    await twoPutsThenClose('tenant-a', ['/tenants/conn/b']);
    const records = await recordsNow();
    const idOf = (key: string): string | undefined => records.find((r) => r.etcd?.request.key === key)?.etcdgate.connection_id;
    expect(idOf('/tenants/conn/a')).toBeDefined();
    expect(idOf('/tenants/conn/b')).toBeDefined();
    expect(idOf('/tenants/conn/a')).not.toBe(idOf('/tenants/conn/b'));
  });

  it('writes a subject DN that needs escaping escaped once, as RFC 4514 says', async () => {
    await twoPutsThenClose('tenant-a', ['/tenants/conn/awkward'], awkward);
    const records = await recordsNow();
    const call = records.find((r) => r.etcd?.request.key === '/tenants/conn/awkward');
    expect(call).toBeDefined();
    const open = records.find((r) => r.etcdgate.event_kind === 'connection.open' && r.etcdgate.connection_id === call?.etcdgate.connection_id);
    expect(open?.tls?.client.x509?.subject?.['distinguished_name']).toBe('O=tenants, CN=tenant-a\\, O=evil\\+x\\;\\"q\\"\\\\b');
    expect(open?.user?.name).toBe(AWKWARD_CN);
    expect(call?.tls?.client.x509?.subject?.['common_name']).toEqual([AWKWARD_CN]);
  });
});
