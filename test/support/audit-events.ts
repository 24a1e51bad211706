/**
 * CallEvent and HandshakeEvent fixtures for the audit tests: a plausible identity and
 * one builder per kind of event, each overridable field by field.
 */
import type { CallEvent, ConnectionEvent, HandshakeEvent, KeySummary } from '../../src/audit/types.js';
import type { Identity } from '../../src/tls/identity.js';

/** An identity as identityFromDer would produce it, without needing a certificate. */
export function fakeIdentity(overrides: Partial<Identity> = {}): Identity {
  return {
    cn: 'tenant-a',
    o: ['tenants'],
    ou: ['team-a'],
    dns: [],
    uri: ['spiffe://example.org/tenant/a'],
    ip: [],
    serial: '1A2B3C4D5E6F',
    fingerprint: 'ab'.repeat(32),
    issuer: 'CN=etcdgate dev CA',
    subject: 'O=tenants\nOU=team-a\nCN=tenant-a',
    notBefore: new Date('2024-01-01T00:00:00Z'),
    notAfter: new Date('2024-02-01T00:00:00Z'),
    ...overrides,
  };
}

/** A KeySummary for a Put of `key`. */
export function putSummary(key: Buffer | string): KeySummary {
  return { op: 'put', key: typeof key === 'string' ? Buffer.from(key) : key, details: { prevKv: false } };
}

/** An allowed, successful KV.Put; override anything. */
export function callEvent(overrides: Partial<CallEvent> = {}): CallEvent {
  return {
    kind: 'call',
    service: 'etcdserverpb.KV',
    method: 'Put',
    action: 'etcd.kv.put',
    category: 'database',
    eventType: 'change',
    start: new Date('2024-01-15T10:00:00.000Z'),
    durationNs: 1_234_567n,
    peer: { address: '127.0.0.1', port: 50123, tlsVersion: 'TLSv1.3', identity: fakeIdentity(), connectionId: '0a1b2c3d4e5f-1' },
    roles: ['tenant-a'],
    request: putSummary('/tenants/a/config'),
    decision: { allowed: true, role: 'tenant-a', rule: 'prefix /tenants/a/ readwrite', reason: 'granted' },
    result: { code: 0, message: '', revision: '42' },
    ...overrides,
  };
}

/** A refused handshake from a certificate of an unknown CA. */
export function handshakeEvent(overrides: Partial<HandshakeEvent> = {}): HandshakeEvent {
  return {
    start: new Date('2024-01-15T10:00:01.000Z'),
    address: '127.0.0.1',
    port: 50200,
    reason: 'unknown_ca',
    error: 'unable to verify the first certificate',
    identity: fakeIdentity({ issuer: 'CN=unrelated dev CA' }),
    ...overrides,
  };
}

/** A verified connection opened (override `kind` for its close). */
export function connectionEvent(overrides: Partial<ConnectionEvent> = {}): ConnectionEvent {
  return {
    kind: 'connection.open',
    start: new Date('2024-01-15T09:59:59.000Z'),
    connectionId: '0a1b2c3d4e5f-1',
    address: '127.0.0.1',
    port: 50123,
    tlsVersion: 'TLSv1.3',
    identity: fakeIdentity(),
    roles: ['tenant-a'],
    ...overrides,
  };
}
