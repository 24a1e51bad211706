/**
 * Proves that audit records follow the documented ECS layout for every kind of event:
 * field names and values, lean call records (the certificate's searchable fields and the
 * connection id) beside connection records that hold the certificate in full, the
 * `unknown` outcome of a request etcd got but never answered, the refused operation of
 * a denied Txn, distinguished names escaped once, unverified names kept out of
 * user.name, keys shown as text only when printable (base64 otherwise), Txn compares
 * and branches nested, no value of any kind in a record, unique event ids.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createAuditor } from '../src/audit/auditor.js';
import { AUDIT_SCHEMA_VERSION, buildCallRecord, buildConnectionRecord, buildHandshakeRecord, ECS_VERSION, serializeRecord } from '../src/audit/record.js';
import type { JsonObject, JsonValue, RecordContext } from '../src/audit/record.js';
import type { CallEventKind } from '../src/audit/types.js';
import type { AuditConfig } from '../src/config/types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { callEvent, connectionEvent, fakeIdentity, handshakeEvent, putSummary } from './support/audit-events.js';

const context: RecordContext = { eventId: 'id-1', version: '0.1.0', policyVersion: 'abcdef012345' };

/** Reads a dotted path ("event.type") out of a record. */
function at(record: JsonValue, dotted: string): JsonValue | undefined {
  let node: JsonValue | undefined = record;
  for (const part of dotted.split('.')) {
    if (node === null || node === undefined || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = node[part];
  }
  return node;
}

/** Every property name anywhere in a JSON value. */
function fieldNames(value: JsonValue, into = new Set<string>()): Set<string> {
  if (Array.isArray(value)) for (const item of value) fieldNames(item, into);
  else if (value !== null && typeof value === 'object') {
    for (const [name, child] of Object.entries(value)) {
      into.add(name);
      fieldNames(child, into);
    }
  }
  return into;
}

/** A record as it goes over the wire and comes back. */
function roundTrip(record: JsonObject): JsonObject {
  return JSON.parse(JSON.stringify(record)) as JsonObject;
}

describe('call records', () => {
  it('an allowed unary call carries the ECS fields with their documented values', () => {
    const record = roundTrip(buildCallRecord(callEvent(), context));
    expect(record['@timestamp']).toBe('2024-01-15T10:00:00.000Z');
    expect(at(record, 'ecs.version')).toBe(ECS_VERSION);
    expect(at(record, 'etcdgate.schema_version')).toBe(AUDIT_SCHEMA_VERSION);
    expect(at(record, 'etcdgate.version')).toBe('0.1.0');
    expect(at(record, 'etcdgate.policy_version')).toBe('abcdef012345');
    expect(at(record, 'event.id')).toBe('id-1');
    expect(at(record, 'event.kind')).toBe('event');
    expect(at(record, 'event.category')).toEqual(['database']);
    expect(at(record, 'event.type')).toEqual(['change']);
    expect(at(record, 'event.action')).toBe('etcd.kv.put');
    expect(at(record, 'event.outcome')).toBe('success');
    expect(at(record, 'event.duration')).toBe(1_234_567);
    expect(at(record, 'user.name')).toBe('tenant-a');
    expect(at(record, 'user.roles')).toEqual(['tenant-a']);
    expect(at(record, 'source')).toEqual({ ip: '127.0.0.1', port: 50123 });
    // Lean: what a search needs, and the connection whose record has the rest.
    expect(at(record, 'tls')).toEqual({
      client: {
        x509: { subject: { common_name: ['tenant-a'], organization: ['tenants'], organizational_unit: ['team-a'] }, alternative_names: ['spiffe://example.org/tenant/a'] },
        hash: { sha256: 'AB'.repeat(32) },
      },
    });
    expect(at(record, 'etcdgate.connection_id')).toBe('0a1b2c3d4e5f-1');
    expect(at(record, 'etcdgate.request_sent')).toBeUndefined();
    expect(at(record, 'etcd.request.service')).toBe('etcdserverpb.KV');
    expect(at(record, 'etcd.request.method')).toBe('Put');
    expect(at(record, 'etcd.request.op')).toBe('put');
    expect(at(record, 'etcd.request.key')).toBe('/tenants/a/config');
    expect(at(record, 'etcd.request.prev_kv')).toBe(false);
    expect(at(record, 'etcd.decision')).toEqual({
      allowed: true,
      role: 'tenant-a',
      rule: 'prefix /tenants/a/ readwrite',
      reason: 'granted',
    });
    expect(at(record, 'etcd.response')).toEqual({ code: 0, code_name: 'OK', revision: '42' });
    expect(at(record, 'trace')).toBeUndefined();
  });

  it('a denied call is a failure with "denied" in event.type and the decision as reason', () => {
    const record = buildCallRecord(
      callEvent({
        method: 'Range',
        action: 'etcd.kv.range',
        eventType: 'access',
        request: { op: 'range', key: Buffer.from('/tenants/b/'), rangeEnd: Buffer.from('/tenants/b0'), details: { limit: 10, keysOnly: true } },
        decision: { allowed: false, reason: 'range not covered' },
        result: { code: 7, message: 'etcdserver: permission denied' },
      }),
      context,
    );
    expect(at(record, 'event.type')).toEqual(['access', 'denied']);
    expect(at(record, 'event.outcome')).toBe('failure');
    expect(at(record, 'event.reason')).toBe('range not covered');
    expect(at(record, 'etcd.decision')).toMatchObject({ allowed: false, reason: 'range not covered' });
    expect(at(record, 'etcd.response.code_name')).toBe('PERMISSION_DENIED');
    expect(at(record, 'etcd.request.range_end')).toBe('/tenants/b0');
    expect(at(record, 'etcd.request.limit')).toBe(10);
    expect(at(record, 'etcd.request.keys_only')).toBe(true);
  });

  it('an allowed call that failed upstream is a failure whose reason is the upstream message', () => {
    const record = buildCallRecord(callEvent({ result: { code: 14, message: 'no etcd endpoint available' }, traceId: 'trace-9' }), context);
    expect(at(record, 'event.type')).toEqual(['change']);
    expect(at(record, 'event.outcome')).toBe('failure');
    expect(at(record, 'event.reason')).toBe('no etcd endpoint available');
    expect(at(record, 'etcd.response')).toEqual({ code: 14, code_name: 'UNAVAILABLE', message: 'no etcd endpoint available' });
    expect(at(record, 'trace.id')).toBe('trace-9');
  });

  it('a request etcd got but never answered is unknown; one never sent, or refused by etcd, is a failure', () => {
    const ended = (code: number, upstream: { sent: boolean; code?: number }): JsonObject =>
      buildCallRecord(callEvent({ result: { code, message: 'x' }, upstream }), context);
    const reset = ended(1, { sent: true });
    expect(at(reset, 'event.outcome')).toBe('unknown');
    expect(at(reset, 'etcdgate.request_sent')).toBe(true);
    expect(at(reset, 'etcd.response.upstream_code')).toBeUndefined();
    const never = ended(14, { sent: false });
    expect(at(never, 'event.outcome')).toBe('failure');
    expect(at(never, 'etcdgate.request_sent')).toBe(false);
    const refused = ended(11, { sent: true, code: 11 });
    expect(at(refused, 'event.outcome')).toBe('failure');
    expect(at(refused, 'etcdgate.request_sent')).toBe(true);
    expect(at(refused, 'etcd.response.upstream_code')).toBeUndefined();
    // etcd carried it out and said so; the client left before the answer reached it.
    const gone = ended(1, { sent: true, code: 0 });
    expect(at(gone, 'event.outcome')).toBe('success');
    expect(at(gone, 'etcd.response.code')).toBe(1);
    expect(at(gone, 'etcd.response.upstream_code')).toBe(0);
    expect(at(gone, 'etcdgate.request_sent')).toBe(true);
    // A denied call never reached etcd, whatever it carries.
    expect(at(buildCallRecord(callEvent({ decision: { allowed: false, reason: 'not granted' }, result: { code: 7, message: '' }, upstream: { sent: true } }), context), 'event.outcome')).toBe('failure');
  });

  it('a denied Txn names its first refused operation: branch, index, path, op, access and key', () => {
    const record = buildCallRecord(
      callEvent({
        method: 'Txn',
        action: 'etcd.kv.txn',
        request: { op: 'txn', success: [{ op: 'txn', failure: [putSummary('/tenants/b/x')] }] },
        decision: {
          allowed: false,
          reason: 'not granted',
          refused: { kind: 'write', key: Buffer.from('/tenants/b/x'), rangeEnd: Buffer.alloc(0), origin: { branch: 'failure', index: 0, op: 'put', parent: { branch: 'success', index: 0, op: 'txn' } } },
        },
        result: { code: 7, message: 'etcdserver: permission denied' },
      }),
      context,
    );
    expect(at(record, 'etcd.decision.refused')).toEqual({ access: 'write', op: 'put', branch: 'failure', index: 0, path: 'success[0].failure[0]', key: '/tenants/b/x' });
    const range = buildCallRecord(
      callEvent({ decision: { allowed: false, reason: 'range not fully covered', refused: { kind: 'read', key: Buffer.from('/a/'), rangeEnd: Buffer.from([0]) } }, result: { code: 7, message: '' } }),
      context,
    );
    expect(at(range, 'etcd.decision.refused')).toEqual({ access: 'read', key: '/a/', range_end_base64: 'AA==' });
  });

  it('stream events add "start"/"end", and the IAM category shows for the Auth service', () => {
    const stream = (kind: CallEventKind, allowed = true): JsonObject =>
      buildCallRecord(
        callEvent({
          kind,
          service: 'etcdserverpb.Watch',
          method: 'Watch',
          action: 'etcd.watch.watch',
          eventType: 'access',
          watchId: '3',
          request: { op: 'watch', key: Buffer.from('/a/'), rangeEnd: Buffer.from('/a0'), details: { startRevision: 5 } },
          decision: allowed ? { allowed: true, role: 'r', reason: 'granted' } : { allowed: false, reason: 'no binding' },
          result: { code: 0, message: '', count: 17 },
        }),
        context,
      );
    expect(at(stream('watch.create'), 'event.type')).toEqual(['access', 'start']);
    const end = stream('watch.end');
    expect(at(end, 'event.type')).toEqual(['access', 'end']);
    expect(at(end, 'etcd.response.count')).toBe(17);
    expect(at(end, 'etcd.request.watch_id')).toBe('3');
    expect(at(end, 'etcd.request.start_revision')).toBe(5);
    expect(at(end, 'etcdgate.event_kind')).toBe('watch.end');
    expect(at(stream('keepalive.open'), 'event.type')).toEqual(['access', 'start']);
    expect(at(stream('keepalive.close'), 'event.type')).toEqual(['access', 'end']);
    const deny = stream('keepalive.deny', false);
    expect(at(deny, 'event.type')).toEqual(['access', 'denied']);
    expect(at(deny, 'event.outcome')).toBe('failure');
    expect(at(stream('snapshot.start'), 'event.type')).toEqual(['access', 'start']);

    const auth = buildCallRecord(callEvent({ service: 'etcdserverpb.Auth', method: 'UserAdd', category: 'iam', eventType: 'admin', action: 'etcd.auth.user_add' }), context);
    expect(at(auth, 'event.category')).toEqual(['iam']);
    expect(at(auth, 'event.type')).toEqual(['admin']);
  });

  it('a Txn renders its compares and both branches, nested', () => {
    const record = buildCallRecord(
      callEvent({
        method: 'Txn',
        action: 'etcd.kv.txn',
        request: {
          op: 'txn',
          compare: [{ op: 'compare', key: Buffer.from('/a/lock'), details: { target: 'VERSION', result: 'EQUAL' } }],
          success: [
            putSummary('/a/x'),
            { op: 'txn', success: [{ op: 'delete_range', key: Buffer.from([0x00, 0x01]) }], failure: [] },
          ],
          failure: [{ op: 'range', key: Buffer.from('/a/x') }],
        },
      }),
      context,
    );
    expect(at(record, 'etcd.request')).toEqual({
      service: 'etcdserverpb.KV',
      method: 'Txn',
      op: 'txn',
      compare: [{ op: 'compare', key: '/a/lock', target: 'VERSION', result: 'EQUAL' }],
      success: [
        { op: 'put', key: '/a/x', prev_kv: false },
        { op: 'txn', success: [{ op: 'delete_range', key_base64: 'AAE=' }], failure: [] },
      ],
      failure: [{ op: 'range', key: '/a/x' }],
    });
  });

  it('a huge Txn is cut at a bound and marked truncated', () => {
    const ops = Array.from({ length: 2000 }, (_, i) => putSummary(`/k/${String(i)}`));
    const record = buildCallRecord(callEvent({ request: { op: 'txn', success: ops } }), context);
    const success = at(record, 'etcd.request.success');
    expect(Array.isArray(success) && success.length < 2000).toBe(true);
    expect(at(record, 'etcd.request.truncated')).toBe(true);
  });
});

describe('key rendering', () => {
  const keyFields = (key: Buffer): { key: JsonValue | undefined; base64: JsonValue | undefined } => {
    const record = buildCallRecord(callEvent({ request: { op: 'range', key, rangeEnd: key } }), context);
    expect(at(record, 'etcd.request.range_end')).toEqual(at(record, 'etcd.request.key'));
    expect(at(record, 'etcd.request.range_end_base64')).toEqual(at(record, 'etcd.request.key_base64'));
    return { key: at(record, 'etcd.request.key'), base64: at(record, 'etcd.request.key_base64') };
  };

  it('printable UTF-8 keys are text', () => {
    expect(keyFields(Buffer.from('/registry/pods/default/nginx'))).toEqual({ key: '/registry/pods/default/nginx', base64: undefined });
    expect(keyFields(Buffer.from('/configs/größe/日本'))).toEqual({ key: '/configs/größe/日本', base64: undefined });
    expect(keyFields(Buffer.alloc(0))).toEqual({ key: '', base64: undefined });
  });

  it('invalid UTF-8, control characters and bidi overrides are base64', () => {
    const cases = [
      Buffer.from([0x2f, 0x61, 0xff, 0xfe]),
      Buffer.from([0xc3]),
      Buffer.from('/a\nfake log line'),
      Buffer.from('/a\u001b[31m'),
      Buffer.from('/a\u0000'),
      Buffer.from('/a\u202egnp.exe'),
      Buffer.from('/a\u0085b'),
      Buffer.from([0x00]),
    ];
    for (const key of cases) expect(keyFields(key)).toEqual({ key: undefined, base64: key.toString('base64') });
  });
});

describe('what never reaches a record', () => {
  it('no value, password or Buffer is serialized even when smuggled past the types', () => {
    const secret = 'hunter2-secret-value';
    const smuggled = {
      ...callEvent(),
      value: Buffer.from(secret),
      password: secret,
      request: {
        op: 'put',
        key: Buffer.from('/a/k'),
        value: Buffer.from(secret),
        details: { lease: 7, sneaky: Buffer.from(secret) as unknown as string },
      },
      result: { code: 0, message: '', revision: '1', value: secret },
    };
    const json = JSON.stringify(buildCallRecord(smuggled, context));
    expect(json).not.toContain(secret);
    expect(json).not.toContain(Buffer.from(secret).toString('base64'));
    expect(json).not.toContain('"type":"Buffer"');
    const names = fieldNames(JSON.parse(json) as JsonValue);
    expect(names.has('value')).toBe(false);
    expect(names.has('password')).toBe(false);
    expect(names.has('sneaky')).toBe(false);
    expect(at(JSON.parse(json) as JsonValue, 'etcd.request.lease')).toBe(7);
  });
});

describe('connection records', () => {
  it('the open record holds the certificate in full, the TLS version and the connection id', () => {
    const record = roundTrip(buildConnectionRecord(connectionEvent(), context));
    expect(at(record, 'event.category')).toEqual(['network']);
    expect(at(record, 'event.type')).toEqual(['connection', 'start']);
    expect(at(record, 'event.action')).toBe('etcdgate.tls.connection');
    expect(at(record, 'user')).toEqual({ name: 'tenant-a', roles: ['tenant-a'] });
    expect(at(record, 'tls.version')).toBe('1.3');
    expect(at(record, 'tls.version_protocol')).toBe('tls');
    expect(at(record, 'tls.client.x509.serial_number')).toBe('1A2B3C4D5E6F');
    expect(at(record, 'tls.client.x509.issuer.distinguished_name')).toBe('CN=etcdgate dev CA');
    expect(at(record, 'tls.client.x509.subject.distinguished_name')).toBe('O=tenants, OU=team-a, CN=tenant-a');
    expect(at(record, 'tls.client.hash.sha256')).toBe('AB'.repeat(32));
    expect(at(record, 'tls.client.not_after')).toBe('2024-02-01T00:00:00.000Z');
    expect(at(record, 'etcdgate.connection_id')).toBe('0a1b2c3d4e5f-1');
    expect(at(record, 'etcdgate.event_kind')).toBe('connection.open');
  });

  it('the close record has the duration, the reason when etcdgate closed it, and the lean fields', () => {
    const record = roundTrip(buildConnectionRecord(connectionEvent({ kind: 'connection.close', durationNs: 2_000_000n, reason: 'revoked' }), context));
    expect(at(record, 'event.type')).toEqual(['connection', 'end']);
    expect(at(record, 'event.duration')).toBe(2_000_000);
    expect(at(record, 'event.reason')).toBe('revoked');
    expect(at(record, 'tls.client.x509.serial_number')).toBeUndefined();
    expect(at(record, 'tls.client.hash.sha256')).toBe('AB'.repeat(32));
    expect(at(record, 'etcdgate.event_kind')).toBe('connection.close');
  });
});

describe('distinguished names', () => {
  it('are written as Node prints them, escaped once (RFC 4514), multi-valued RDNs joined by "+"', () => {
    // Node (OpenSSL's RFC 2253 escaping) prints CN "tenant-a, O=x+y" as below.
    const subject = 'CN=tenant-a\\, O=x\\+y\\;\\"q\\"\\\\\nO=\\#lead\nOU=a + OU=b';
    const record = buildConnectionRecord(connectionEvent({ identity: fakeIdentity({ subject, issuer: 'CN=CA\\, Inc.' }) }), context);
    expect(at(record, 'tls.client.x509.subject.distinguished_name')).toBe('CN=tenant-a\\, O=x\\+y\\;\\"q\\"\\\\, O=\\#lead, OU=a+OU=b');
    expect(at(record, 'tls.client.x509.issuer.distinguished_name')).toBe('CN=CA\\, Inc.');
  });
});

describe('refused handshakes', () => {
  it('are authentication events, denied, with what the certificate showed', () => {
    const record = roundTrip(buildHandshakeRecord(handshakeEvent(), context));
    expect(at(record, 'event.category')).toEqual(['authentication']);
    expect(at(record, 'event.type')).toEqual(['start', 'denied']);
    expect(at(record, 'event.outcome')).toBe('failure');
    expect(at(record, 'event.reason')).toBe('unknown_ca');
    expect(at(record, 'error.message')).toBe('unable to verify the first certificate');
    expect(at(record, 'source.ip')).toBe('127.0.0.1');
    expect(at(record, 'tls.client.x509.issuer.distinguished_name')).toBe('CN=unrelated dev CA');
    // The certificate was not verified: what it claims is never the user.
    expect(at(record, 'user')).toBeUndefined();
    expect(at(record, 'tls.client.x509.subject.common_name')).toEqual(['tenant-a']);
    expect(at(record, 'etcdgate.identity_verified')).toBe(false);
    expect(at(record, 'etcdgate.event_kind')).toBe('handshake.refused');
  });

  it('without a certificate, carry no user or tls.client', () => {
    const { identity: _identity, ...rest } = handshakeEvent();
    const record = buildHandshakeRecord({ ...rest, reason: 'no_certificate' }, context);
    expect(at(record, 'user')).toBeUndefined();
    expect(at(record, 'tls')).toBeUndefined();
    expect(at(record, 'etcdgate.identity_verified')).toBeUndefined();
  });
});

describe('event ids', () => {
  it('are unique across every record an auditor writes', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (chunk: Buffer) => chunks.push(chunk));
    const config: AuditConfig = {
      sink: { kind: 'stdout' },
      onFailure: 'deny',
      level: { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' },
      bufferRecords: 10_000,
    };
    const auditor = await createAuditor(config, { metrics: NOOP_METRICS, version: '0.1.0', policyVersion: () => 'p1', stdout: out });
    for (let i = 0; i < 2000; i += 1) {
      if (i % 10 === 0) auditor.handshakeRefused(handshakeEvent());
      else auditor.record(callEvent());
    }
    await auditor.close();
    const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((line) => line !== '');
    expect(lines).toHaveLength(2000);
    const ids = new Set(lines.map((line) => at(JSON.parse(line) as JsonValue, 'event.id')));
    expect(ids.size).toBe(2000);
  });
});

describe('serialized records', () => {
  it('escape DEL, C1 controls and line separators that JSON.stringify leaves raw', () => {
    const cn = 'odd\u007fname\u0085with\u2028breaks';
    const json = serializeRecord(buildCallRecord(callEvent({ peer: { ...callEvent().peer, identity: fakeIdentity({ cn }) } }), context));
    expect(/[\u007f-\u009f\u2028\u2029]/u.test(json)).toBe(false);
    expect(json).toContain('odd\\u007fname\\u0085with\\u2028breaks');
    expect(at(JSON.parse(json) as JsonValue, 'user.name')).toBe(cn);
  });
});
