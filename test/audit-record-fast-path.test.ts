/**
 * Proves that the records the auditor writes directly as text (serializeCallRecord,
 * serializeHandshakeRecord) are byte for byte the lines serializeRecord makes of the
 * object builders: same fields, same order, same escaping (JSON.stringify's plus DEL, C1
 * controls, U+2028/U+2029), the same truncation, for hand-picked awkward events and for
 * generated ones, and that the auditor's stdout and syslog output are made of those lines.
 */
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createAuditor } from '../src/audit/auditor.js';
import {
  buildCallRecord,
  buildConnectionRecord,
  buildHandshakeRecord,
  serializeCallRecord,
  serializeConnectionRecord,
  serializeHandshakeRecord,
  serializeRecord,
} from '../src/audit/record.js';
import type { RecordContext } from '../src/audit/record.js';
import type { CallEvent, CallEventKind, ConnectionEvent, HandshakeEvent, KeySummary } from '../src/audit/types.js';
import type { Access, AccessOrigin } from '../src/policy/types.js';
import type { AuditConfig } from '../src/config/types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import type { Identity } from '../src/tls/identity.js';
import { callEvent, connectionEvent, fakeIdentity, handshakeEvent, putSummary } from './support/audit-events.js';

const context: RecordContext = { eventId: 'id-1', version: '0.1.0', policyVersion: 'abcdef012345' };

/** DEL, C1 controls and the two separators: never raw in a serialized record. */
const RAW_UNSAFE = /[\u007f-\u009f\u2028\u2029]/u;

/** Asserts the direct line equals the reference line, byte for byte and as parsed JSON. */
function expectSameCall(event: CallEvent, ctx: RecordContext = context): string {
  const slow = serializeRecord(buildCallRecord(event, ctx));
  const fast = serializeCallRecord(event, ctx);
  expect(JSON.parse(fast)).toStrictEqual(JSON.parse(slow));
  expect(fast).toBe(slow);
  expect(RAW_UNSAFE.test(fast)).toBe(false);
  return fast;
}

function expectSameConnection(event: ConnectionEvent, ctx: RecordContext = context): string {
  const slow = serializeRecord(buildConnectionRecord(event, ctx));
  const fast = serializeConnectionRecord(event, ctx);
  expect(JSON.parse(fast)).toStrictEqual(JSON.parse(slow));
  expect(fast).toBe(slow);
  expect(RAW_UNSAFE.test(fast)).toBe(false);
  return fast;
}

function expectSameHandshake(event: HandshakeEvent, ctx: RecordContext = context): string {
  const slow = serializeRecord(buildHandshakeRecord(event, ctx));
  const fast = serializeHandshakeRecord(event, ctx);
  expect(JSON.parse(fast)).toStrictEqual(JSON.parse(slow));
  expect(fast).toBe(slow);
  expect(RAW_UNSAFE.test(fast)).toBe(false);
  return fast;
}

/** Strings that exercise every escaping path: quotes, controls, separators, surrogates. */
const AWKWARD = [
  '',
  'plain',
  'say "hi"\\now',
  'line\nbreak\r\ttab\u0000nul\u001fus',
  'del\u007f c1\u0085\u009f sep\u2028para\u2029',
  'emoji 😀 pair',
  'lone high \ud83d here',
  'lone low \ude00 here',
  'bidi \u202e override, zero width \u200b, bom \ufeff, replacement \ufffd',
  '日本語 größe',
  `${'a'.repeat(1023)}😀 cut inside a surrogate pair`,
  'x'.repeat(5000),
  '</script><!--',
];

describe('call records written directly', () => {
  it('match the object form for a Put, a Range with range_end, and a denied call', () => {
    const line = expectSameCall(callEvent());
    expect(line.startsWith('{"@timestamp":"2024-01-15T10:00:00.000Z","ecs":')).toBe(true);
    expectSameCall(
      callEvent({
        method: 'Range',
        action: 'etcd.kv.range',
        eventType: 'access',
        request: { op: 'range', key: Buffer.from('/tenants/a/'), rangeEnd: Buffer.from('/tenants/a0'), details: { limit: '500', serializable: true } },
        result: { code: 0, message: '', revision: '9', count: 500 },
      }),
    );
    expectSameCall(
      callEvent({
        decision: { allowed: false, reason: 'range not covered' },
        result: { code: 7, message: 'etcdgate: permission denied' },
      }),
    );
    expectSameCall(callEvent({ decision: { allowed: false, role: 'r', rule: 'deny prefix /x/', reason: 'denied by rule' }, result: { code: 7, message: '' } }));
  });

  it('match the object form for every upstream progress: answered, sent without an answer, never sent', () => {
    const progress = [{ sent: true, code: 0 }, { sent: true, code: 14 }, { sent: true }, { sent: false }, { sent: true, code: Number.NaN }, { sent: 'yes' }, null];
    for (const upstream of progress) {
      for (const code of [0, 1, 4, 14]) {
        expectSameCall(callEvent({ result: { code, message: code === 0 ? '' : 'x' }, upstream: upstream as NonNullable<CallEvent['upstream']> }));
      }
    }
  });

  it('match the object form for refused accesses: a Txn operation nested or not, a range, a capability', () => {
    const nested: AccessOrigin = { branch: 'failure', index: 2, op: 'put', parent: { branch: 'success', index: 0, op: 'txn' } };
    const refused: Access[] = [
      { kind: 'write', key: Buffer.from('/b/k'), rangeEnd: Buffer.alloc(0), origin: nested },
      { kind: 'read', key: Buffer.from('/a/'), rangeEnd: Buffer.from('/a0'), origin: { branch: 'compare', index: 0, op: 'compare' } },
      { kind: 'read', key: Buffer.from([0xff, 0]), rangeEnd: Buffer.from([0]) },
      { kind: 'capability', capability: 'snapshot' },
      { kind: 'authenticated' },
    ];
    for (const access of refused) expectSameCall(callEvent({ decision: { allowed: false, reason: 'not granted', refused: access }, result: { code: 7, message: 'etcdserver: permission denied' } }));
    // An allowed call never names a refused access, even if one is attached.
    const line = expectSameCall(callEvent({ decision: { allowed: true, reason: 'granted', refused: refused[0] as Access } }));
    expect(line).not.toContain('refused');
  });

  it('match the object form for keys that are base64, quoted or non-ASCII text', () => {
    const keys = [
      Buffer.from([0x2f, 0x61, 0xff, 0xfe]),
      Buffer.from('/a\nfake'),
      Buffer.from('/a\u0085b'),
      Buffer.from('/quote"and\\backslash'),
      Buffer.from('/configs/größe/日本'),
      Buffer.from('/emoji/😀'),
      Buffer.from('/a\u202egnp.exe'),
      Buffer.alloc(0),
      Buffer.from([0x7f]),
      Buffer.from(' ~'),
    ];
    for (const key of keys) expectSameCall(callEvent({ request: { op: 'range', key, rangeEnd: key } }));
  });

  it('match the object form for a nested Txn, a truncated one and one nested too deep', () => {
    expectSameCall(
      callEvent({
        request: {
          op: 'txn',
          compare: [{ op: 'compare', key: Buffer.from('/a/k'), details: { target: 'MOD', result: 'EQUAL', modRevision: '4' } }],
          success: [putSummary('/a/k'), { op: 'txn', success: [{ op: 'delete_range', key: Buffer.from([0, 1]) }], failure: [] }],
          failure: [{ op: 'range', key: Buffer.from('/a/x') }],
        },
      }),
    );
    const wide = Array.from({ length: 2000 }, (_, i) => putSummary(`/k/${String(i)}`));
    const truncated = expectSameCall(callEvent({ request: { op: 'txn', success: wide, failure: wide } }));
    expect(truncated).toContain('"truncated":true');
    let deep: KeySummary = { op: 'put', key: Buffer.from('/bottom') };
    for (let i = 0; i < 40; i += 1) deep = { op: 'txn', success: [deep], compare: [] };
    expectSameCall(callEvent({ request: deep, watchId: '7' }));
  });

  it('match the object form for awkward text in every caller-supplied string', () => {
    for (const s of AWKWARD) {
      const identity = fakeIdentity({ cn: s, o: [s], ou: [s, 'ou'], dns: [s], uri: [s], ip: [s], serial: s, fingerprint: s, issuer: `CN=${s}\nO=x,y`, subject: `${s}\n=lead\nCN=${s}` });
      expectSameCall(
        callEvent({
          service: s,
          method: s,
          action: s,
          peer: { address: s, port: 1, tlsVersion: s, identity },
          roles: [s, s],
          request: { op: s, key: Buffer.from(s), rangeEnd: Buffer.from(s), details: { note: s, [`weird${s}`]: s } },
          decision: { allowed: true, role: s, rule: s, reason: s },
          result: { code: 14, message: s, revision: s },
          watchId: s,
          traceId: s,
          http: { version: '1.1', path: s },
        }),
        { eventId: s, version: s, policyVersion: s },
      );
    }
  });

  it('match the object form for details that collide, are out of range or were smuggled in', () => {
    const details = { prevKv: true, prev_kv: false, ID: '5', TTL: 30, nan: Number.NaN, inf: Number.POSITIVE_INFINITY, negZero: -0, float: 1.5e300, '1': 'x', key: 'reserved', Op: 'reserved too', sneaky: Buffer.from('v') as unknown as string, lease: Number.NaN };
    expectSameCall(callEvent({ request: { op: 'put', key: Buffer.from('/a'), details } }));
    const notObject = { op: 'put', details: 'oops' } as unknown as KeySummary;
    expectSameCall(callEvent({ request: notObject }));
    const arrayDetails = { op: 'put', details: ['a', 'b'] } as unknown as KeySummary;
    expectSameCall(callEvent({ request: arrayDetails }));
  });

  it('match the object form for every stream kind, missing optional fields and odd numbers', () => {
    const kinds: CallEventKind[] = ['call', 'watch.create', 'watch.end', 'keepalive.open', 'keepalive.close', 'keepalive.deny', 'snapshot.start', 'snapshot.end'];
    for (const kind of kinds) {
      expectSameCall(callEvent({ kind, result: { code: 0, message: '', count: 3, bytes: 1024 }, watchId: '12' }));
    }
    const { traceId: _t, watchId: _w, ...bare } = callEvent();
    expectSameCall({ ...bare, decision: { allowed: true, reason: 'granted' }, result: { code: 0, message: '' } });
    expectSameCall(callEvent({ durationNs: 10n ** 400n, result: { code: Number.NaN, message: '' } }));
    expectSameCall(callEvent({ durationNs: -5n, result: { code: 99, message: '', count: Number.NaN, bytes: -0 } }));
    expectSameCall(callEvent({ peer: { address: '', port: Number.NaN, tlsVersion: 'TLSv1.2', identity: fakeIdentity() } }));
    expectSameCall(callEvent({ peer: { address: '::1', port: 0, tlsVersion: 'SSLv3', identity: fakeIdentity({ cn: '', uri: [], dns: [] }) } }));
    expectSameCall(callEvent({ peer: { address: '::1', port: 0, tlsVersion: '', identity: fakeIdentity({ cn: '', uri: [], dns: ['dns.example'] }) } }));
    expectSameCall(callEvent({ roles: [] }));
    expectSameCall(callEvent({ start: new Date(-62_198_755_200_001) }));
    expectSameCall(callEvent({ start: new Date(8.64e15) }));
    expectSameCall(callEvent({ start: new Date(-8.64e15) }));
  });

  it('write a current timestamp for an invalid start, as the object form does', () => {
    const before = Date.now();
    const line = serializeCallRecord(callEvent({ start: new Date(Number.NaN) }), context);
    const stamp = Date.parse((JSON.parse(line) as { '@timestamp': string })['@timestamp']);
    expect(stamp).toBeGreaterThanOrEqual(before);
    expect(stamp).toBeLessThanOrEqual(Date.now());
  });

  it('stay identical when an identity is reused (its parts are serialized once and cached)', () => {
    const identity = fakeIdentity({ cn: 'cached\u2028cn' });
    for (let i = 0; i < 3; i += 1) {
      expectSameCall(callEvent({ peer: { address: '127.0.0.1', port: i, tlsVersion: 'TLSv1.3', identity } }));
      expectSameHandshake(handshakeEvent({ identity }));
    }
  });
});

describe('connection records written directly', () => {
  it('match the object form for an open and a close, with awkward text and missing fields', () => {
    expectSameConnection(connectionEvent());
    expectSameConnection(connectionEvent({ kind: 'connection.close', durationNs: 5_000_000_000n, reason: 'revoked' }));
    expectSameConnection(connectionEvent({ kind: 'connection.close' }));
    for (const s of AWKWARD) {
      const identity = fakeIdentity({ cn: s, o: [s], issuer: s, subject: `CN=${s}` });
      expectSameConnection(connectionEvent({ connectionId: s, address: s, tlsVersion: s, identity, roles: [s] }), { eventId: s, version: s, policyVersion: s });
      expectSameConnection(connectionEvent({ kind: 'connection.close', connectionId: s, reason: s, identity }));
    }
  });
});

describe('handshake records written directly', () => {
  it('match the object form with and without a certificate and with awkward text', () => {
    expectSameHandshake(handshakeEvent());
    const { identity: _identity, ...anonymous } = handshakeEvent();
    expectSameHandshake({ ...anonymous, reason: 'no_certificate', error: '' });
    for (const s of AWKWARD) {
      expectSameHandshake(handshakeEvent({ reason: s, error: s, address: s, identity: fakeIdentity({ cn: s, issuer: s }) }), { eventId: s, version: s, policyVersion: s });
    }
  });
});

// Generated events -------------------------------------------------------------------------

/** Any UTF-16 string, lone surrogates and controls included, or one of the awkward ones. */
const anyText: fc.Arbitrary<string> = fc.oneof(
  fc.string(),
  fc.array(fc.integer({ min: 0, max: 0xffff }), { maxLength: 24 }).map((units) => String.fromCharCode(...units)),
  fc.array(fc.constantFrom(0x22, 0x5c, 0x0a, 0x7f, 0x85, 0x2028, 0x2029, 0xd83d, 0xde00, 0x41, 0xe9), { maxLength: 12 }).map((units) => String.fromCharCode(...units)),
  fc.constantFrom(...AWKWARD),
);

const keyBytes: fc.Arbitrary<Buffer> = fc.oneof(
  fc.uint8Array({ maxLength: 24 }).map((bytes) => Buffer.from(bytes)),
  anyText.map((s) => Buffer.from(s)),
  fc.constantFrom('/registry/pods/default/nginx', '/a"b\\c', '/größe').map((s) => Buffer.from(s)),
);

const detailName = fc.oneof(
  fc.constantFrom('lease', 'prevKv', 'prev_kv', 'ID', 'TTL', 'peerURLs', 'isLearner', 'limit', 'op', 'key', 'rangeEnd', 'range_end', 'success', 'watchId', 'truncated', '1', '2x', 'A', 'a-b', '__proto__'),
  fc.string({ maxLength: 8 }),
);

const detailValue: fc.Arbitrary<unknown> = fc.oneof(fc.boolean(), fc.double(), fc.integer(), anyText, fc.constant(Buffer.from('smuggled')), fc.constant(null));

const details = fc.array(fc.tuple(detailName, detailValue), { maxLength: 6 }).map((entries) => Object.fromEntries(entries) as Record<string, string | number | boolean>);

/** A KeySummary with any subset of its optional members, Txn branches nested `depth` deep. */
function summaryOf(depth: number): fc.Arbitrary<KeySummary> {
  const children = depth === 0 ? fc.constant([]) : fc.array(summaryOf(depth - 1), { maxLength: 3 });
  return fc
    .record(
      {
        op: fc.oneof(fc.constantFrom('put', 'range', 'txn', 'compare', 'delete_range'), anyText),
        key: keyBytes,
        rangeEnd: keyBytes,
        details,
        compare: children,
        success: children,
        failure: children,
      },
      { requiredKeys: ['op'] },
    )
    .map((node) => node as KeySummary);
}

const summary = summaryOf(3);

const identity: fc.Arbitrary<Identity> = fc
  .record({
    cn: fc.oneof(fc.constant(''), anyText),
    o: fc.array(anyText, { maxLength: 2 }),
    ou: fc.array(anyText, { maxLength: 2 }),
    dns: fc.array(anyText, { maxLength: 2 }),
    uri: fc.array(anyText, { maxLength: 2 }),
    ip: fc.array(anyText, { maxLength: 2 }),
    serial: anyText,
    fingerprint: anyText,
    issuer: anyText,
    subject: anyText,
    notBefore: fc.date(),
    notAfter: fc.date(),
  })
  .map((fields) => Object.freeze(fields));

/** A Txn position up to three levels deep. */
const origin: fc.Arbitrary<AccessOrigin> = fc.letrec<{ origin: AccessOrigin }>((tie) => ({
  origin: fc.record(
    {
      branch: fc.constantFrom('compare', 'success', 'failure'),
      index: fc.oneof(fc.nat(600), fc.double()),
      op: fc.oneof(fc.constantFrom('compare', 'range', 'put', 'delete_range', 'txn'), anyText),
      parent: fc.option(tie('origin'), { nil: undefined, depthSize: 'small' }),
    },
    { requiredKeys: ['branch', 'index', 'op'] },
  ) as fc.Arbitrary<AccessOrigin>,
})).origin;

const access: fc.Arbitrary<Access> = fc.oneof(
  fc.record({ kind: fc.constantFrom('read', 'write'), key: keyBytes, rangeEnd: keyBytes, origin: fc.option(origin, { nil: undefined }) }).map((a) => {
    const { origin: at, ...rest } = a;
    return (at === undefined ? rest : { ...rest, origin: at }) as Access;
  }),
  fc.constantFrom('lease', 'snapshot', 'admin').map((capability) => ({ kind: 'capability', capability }) as Access),
  fc.constant({ kind: 'authenticated' } as Access),
);

const kind = fc.constantFrom<CallEventKind>('call', 'watch.create', 'watch.end', 'keepalive.open', 'keepalive.close', 'keepalive.deny', 'snapshot.start', 'snapshot.end');

const optionalNumber = fc.option(fc.oneof(fc.integer(), fc.double()), { nil: undefined });

const event: fc.Arbitrary<CallEvent> = fc
  .record({
    kind,
    service: anyText,
    method: anyText,
    action: anyText,
    category: fc.constantFrom('database', 'iam'),
    eventType: fc.constantFrom('access', 'change', 'admin', 'info'),
    start: fc.date({ noInvalidDate: true }),
    durationNs: fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }),
    address: anyText,
    port: fc.oneof(fc.integer({ min: 0, max: 65_535 }), fc.double()),
    tlsVersion: fc.oneof(fc.constantFrom('TLSv1.3', 'TLSv1.2', 'TLSv1', ''), anyText),
    identity,
    roles: fc.array(anyText, { maxLength: 3 }),
    request: summary,
    allowed: fc.boolean(),
    role: fc.option(anyText, { nil: undefined }),
    rule: fc.option(anyText, { nil: undefined }),
    reason: anyText,
    code: fc.oneof(fc.integer({ min: -1, max: 20 }), fc.double()),
    message: anyText,
    revision: fc.option(anyText, { nil: undefined }),
    count: optionalNumber,
    bytes: optionalNumber,
    watchId: fc.option(anyText, { nil: undefined }),
    traceId: fc.option(anyText, { nil: undefined }),
    http: fc.option(fc.record({ version: fc.constantFrom('1.1' as const, '2' as const), path: anyText }), { nil: undefined }),
    connectionId: fc.option(anyText, { nil: undefined }),
    upstream: fc.option(fc.record({ sent: fc.boolean(), code: fc.integer({ min: -1, max: 20 }) }, { requiredKeys: ['sent'] }), { nil: undefined }),
    refused: fc.option(access, { nil: undefined }),
    rangeReadWaitMs: optionalNumber,
  })
  .map((f) => {
    const decision = {
      allowed: f.allowed,
      reason: f.reason,
      ...(f.role !== undefined ? { role: f.role } : {}),
      ...(f.rule !== undefined ? { rule: f.rule } : {}),
      ...(f.refused !== undefined ? { refused: f.refused } : {}),
    };
    const result = {
      code: f.code,
      message: f.message,
      ...(f.revision !== undefined ? { revision: f.revision } : {}),
      ...(f.count !== undefined ? { count: f.count } : {}),
      ...(f.bytes !== undefined ? { bytes: f.bytes } : {}),
    };
    return {
      kind: f.kind,
      service: f.service,
      method: f.method,
      action: f.action,
      category: f.category,
      eventType: f.eventType,
      start: f.start,
      durationNs: f.durationNs,
      peer: { address: f.address, port: f.port, tlsVersion: f.tlsVersion, identity: f.identity, ...(f.connectionId !== undefined ? { connectionId: f.connectionId } : {}) },
      roles: f.roles,
      request: f.request,
      decision,
      result,
      ...(f.watchId !== undefined ? { watchId: f.watchId } : {}),
      ...(f.traceId !== undefined ? { traceId: f.traceId } : {}),
      ...(f.http !== undefined ? { http: f.http } : {}),
      ...(f.upstream !== undefined ? { upstream: f.upstream } : {}),
      ...(f.rangeReadWaitMs !== undefined ? { rangeReadWaitMs: f.rangeReadWaitMs } : {}),
    };
  });

const recordContext: fc.Arbitrary<RecordContext> = fc.record({ eventId: anyText, version: anyText, policyVersion: anyText });

describe('generated events', () => {
  it('give the same line both ways, byte for byte', () => {
    fc.assert(
      fc.property(event, recordContext, (e, ctx) => {
        expectSameCall(e, ctx);
        // A second record of the same connection takes the cached identity parts.
        expectSameCall({ ...e, roles: [] }, ctx);
      }),
      { numRuns: 1500 },
    );
  });

  it('give the same connection line both ways, byte for byte', () => {
    fc.assert(
      fc.property(
        fc.record({
          kind: fc.constantFrom<ConnectionEvent['kind']>('connection.open', 'connection.close'),
          start: fc.date({ noInvalidDate: true }),
          connectionId: anyText,
          address: anyText,
          port: fc.oneof(fc.integer(), fc.double()),
          tlsVersion: anyText,
          identity,
          roles: fc.array(anyText, { maxLength: 3 }),
          durationNs: fc.option(fc.bigInt({ min: -(2n ** 70n), max: 2n ** 70n }), { nil: undefined }),
          reason: fc.option(anyText, { nil: undefined }),
        }),
        recordContext,
        (f, ctx) => {
          const { durationNs, reason, ...rest } = f;
          expectSameConnection({ ...rest, ...(durationNs === undefined ? {} : { durationNs }), ...(reason === undefined ? {} : { reason }) }, ctx);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('give the same handshake line both ways, byte for byte', () => {
    fc.assert(
      fc.property(
        fc.record({ start: fc.date({ noInvalidDate: true }), address: anyText, port: fc.oneof(fc.integer(), fc.double()), reason: anyText, error: anyText }),
        fc.option(identity, { nil: undefined }),
        recordContext,
        (fields, id, ctx) => {
          expectSameHandshake(id === undefined ? fields : { ...fields, identity: id }, ctx);
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('the auditor', () => {
  const level = { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' } as const;

  async function written(config: AuditConfig, feed: (auditor: Awaited<ReturnType<typeof createAuditor>>) => void): Promise<string> {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (chunk: Buffer) => chunks.push(chunk));
    const auditor = await createAuditor(config, { metrics: NOOP_METRICS, version: '0.1.0', policyVersion: () => 'p1', stdout: out });
    feed(auditor);
    await auditor.close();
    return Buffer.concat(chunks).toString('utf8');
  }

  it('writes to stdout exactly the reference line of each record, one per line', async () => {
    const events = [
      callEvent(),
      callEvent({ result: { code: 14, message: 'upstream "down"\u2028again' }, traceId: 'trace-1' }),
      callEvent({ request: { op: 'range', key: Buffer.from([0xff]), rangeEnd: Buffer.from('/z') } }),
    ];
    const text = await written({ sink: { kind: 'stdout' }, onFailure: 'deny', level, bufferRecords: 100 }, (auditor) => {
      for (const e of events) auditor.record(e);
      auditor.handshakeRefused(handshakeEvent());
    });
    expect(text.endsWith('\n')).toBe(true);
    const lines = text.slice(0, -1).split('\n');
    expect(lines).toHaveLength(4);
    lines.forEach((line, i) => {
      const id = (JSON.parse(line) as { event: { id: string } }).event.id;
      const ctx = { eventId: id, version: '0.1.0', policyVersion: 'p1' };
      const e = events[i];
      const reference = e === undefined ? serializeRecord(buildHandshakeRecord(handshakeEvent(), ctx)) : serializeRecord(buildCallRecord(e, ctx));
      expect(line).toBe(reference);
    });
  });
});
