/**
 * `audit.rules`, the ordered audit policy: validated once at start with every problem
 * named by its field path (and old configs without rules still valid), then applied per
 * record: first match wins, records no rule matches follow `audit.level`, a `none` rule
 * with keys drops a request only when everything it touches is inside them, a `metadata`
 * rule keeps any request reaching into them, and denials are recorded whatever the rules.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditor } from '../src/audit/auditor.js';
import type { CallEvent, KeySummary } from '../src/audit/types.js';
import { ConfigError, parseConfig } from '../src/config/load.js';
import type { AuditConfig, AuditRuleConfig } from '../src/config/types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { callEvent, fakeIdentity } from './support/audit-events.js';

// ---------------------------------------------------------------------------------------
// Validation

let dir = '';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdgate-audit-rules-'));
  // The loader only checks that the files it names exist.
  for (const name of ['ca.crt', 'server.crt', 'server.key']) fs.writeFileSync(path.join(dir, name), 'placeholder\n');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function document(audit: unknown): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:2379', advertiseClientUrls: ['https://127.0.0.1:2379'], tls: { cert: 'server.crt', key: 'server.key', clientCA: 'ca.crt' } },
    upstream: { endpoints: ['https://127.0.0.1:12379'], tls: { ca: 'ca.crt' } },
    audit,
    policy: { roles: {}, bindings: [] },
  };
}

/** The problems parseConfig reports for this `audit` section. */
function auditIssues(audit: unknown): { path: string; message: string }[] {
  try {
    parseConfig(document(audit), { source: '', baseDir: dir });
    return [];
  } catch (error: unknown) {
    if (error instanceof ConfigError) return error.issues.map((i) => ({ path: i.path, message: i.message }));
    throw error;
  }
}

function parsedRules(rules: unknown): readonly AuditRuleConfig[] | undefined {
  return parseConfig(document(rules === undefined ? undefined : { rules }), { source: '', baseDir: dir }).audit.rules;
}

describe('audit.rules validation', () => {
  it('keeps old configs valid: no rules, level as one word or per group', () => {
    expect(auditIssues(undefined)).toEqual([]);
    expect(auditIssues({ level: 'none' })).toEqual([]);
    expect(auditIssues({ level: { read: 'none', write: 'metadata' } })).toEqual([]);
    expect(parsedRules(undefined)).toEqual([]);
  });

  it('reads a valid rule list in order', () => {
    const rules = parsedRules([
      { level: 'metadata', keys: [{ prefix: '/registry/secrets/' }] },
      { level: 'none', match: { cn: 'kube-apiserver-*' }, roles: 'kube-apiserver', methods: ['Range', 'Txn'], groups: ['read', 'write'], keys: [{ key: '/registry/health' }], outcomes: ['success'], description: 'health reads' },
    ]);
    expect(rules).toEqual([
      { level: 'metadata', keys: [{ prefix: '/registry/secrets/' }] },
      { level: 'none', match: { cn: ['kube-apiserver-*'] }, roles: ['kube-apiserver'], methods: ['Range', 'Txn'], groups: ['read', 'write'], keys: [{ key: '/registry/health' }], outcomes: ['success'] },
    ]);
  });

  it('names the field path of every problem in a bad rule', () => {
    const issues = auditIssues({
      rules: [
        { methods: ['Rnage'], level: 'verbose' },
        { level: 'none', groups: ['reads'], outcomes: [], keys: [{ prefix: '/a/', key: '/b' }, 'x', { key: '' }], match: { cm: 'x' }, extra: 1 },
        { level: 'none', match: {}, roles: ['bad role'], match2: null },
        'not a rule',
      ],
    });
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'audit.rules[0].level',
        'audit.rules[0].methods[0]',
        'audit.rules[1].extra',
        'audit.rules[1].groups[0]',
        'audit.rules[1].outcomes',
        'audit.rules[1].keys[0]',
        'audit.rules[1].keys[1]',
        'audit.rules[1].keys[2].key',
        'audit.rules[1].match.cm',
        'audit.rules[2].match',
        'audit.rules[2].roles[0]',
        'audit.rules[2].match2',
        'audit.rules[3]',
      ]),
    );
    expect(issues.find((i) => i.path === 'audit.rules[0].methods[0]')?.message).toContain('unknown etcd method "Rnage"');
    expect(auditIssues({ rules: [{}] })).toEqual([{ path: 'audit.rules[0].level', message: 'is required (one of: none, metadata)' }]);
    expect(auditIssues({ rules: 'none' }).map((i) => i.path)).toEqual(['audit.rules']);
  });
});

// ---------------------------------------------------------------------------------------
// Matching

const KUBE = fakeIdentity({ cn: 'kube-apiserver-etcd-client', o: [], ou: [], uri: [] });

const range = (key: string, rangeEnd?: string): KeySummary => ({ op: 'range', key: Buffer.from(key), ...(rangeEnd === undefined ? {} : { rangeEnd: Buffer.from(rangeEnd) }) });

/** A kube-apiserver call; override anything. */
function kube(overrides: Partial<CallEvent>): CallEvent {
  return callEvent({
    peer: { address: '10.0.0.1', port: 40000, tlsVersion: 'TLSv1.3', identity: KUBE, connectionId: 'c-1' },
    roles: ['kube-apiserver'],
    decision: { allowed: true, role: 'kube-apiserver', reason: 'granted' },
    ...overrides,
  });
}

const get = (key: string): Partial<CallEvent> => ({ method: 'Range', action: 'etcd.kv.range', eventType: 'access', request: range(key) });

/** Which of `events` an auditor with these rules (and level) writes, by index. */
async function written(rules: unknown[], events: CallEvent[], level: AuditConfig['level'] = { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' }): Promise<number[]> {
  const parsed = parsedRules(rules) ?? [];
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  let skipped = 0;
  const auditor = await createAuditor(
    { sink: { kind: 'stdout' }, onFailure: 'deny', level, bufferRecords: 1000, rules: parsed },
    { metrics: { ...NOOP_METRICS, auditSkipped: () => (skipped += 1) }, version: '0.1.0', policyVersion: () => 'p', stdout: out },
  );
  events.forEach((event, i) => auditor.record({ ...event, traceId: `t${String(i)}` }));
  await auditor.close();
  const lines = Buffer.concat(chunks).toString('utf8').split('\n').filter((line) => line !== '');
  const indexes = lines.map((line) => Number((JSON.parse(line) as { trace: { id: string } }).trace.id.slice(1)));
  expect(skipped).toBe(events.length - indexes.length);
  return indexes;
}

describe('audit.rules matching', () => {
  it('first match wins; a record no rule matches follows audit.level', async () => {
    const rules = [
      { level: 'metadata', methods: ['Range'], keys: [{ prefix: '/keep/' }] },
      { level: 'none', methods: ['Range'] },
    ];
    expect(await written(rules, [kube(get('/keep/a')), kube(get('/drop/a')), kube({})])).toEqual([0, 2]);
    // With writes at none and no rule for them, a Put is dropped by the level.
    expect(await written(rules, [kube({}), kube(get('/keep/x'))], { read: 'metadata', write: 'none', admin: 'metadata', auth: 'metadata' })).toEqual([1]);
    // A metadata rule overrides a group level of none.
    expect(await written([{ level: 'metadata', methods: ['Put'] }], [kube({})], { read: 'none', write: 'none', admin: 'none', auth: 'none' })).toEqual([0]);
  });

  it('a none rule with keys drops a request only when everything it touches is inside them', async () => {
    const rules = [{ level: 'none', keys: [{ prefix: '/registry/leases/' }, { key: '/registry/health' }] }];
    const txn = (...keys: string[]): Partial<CallEvent> => ({
      method: 'Txn',
      action: 'etcd.kv.txn',
      request: { op: 'txn', compare: [range(keys[0] as string)], success: keys.map((k) => ({ op: 'put', key: Buffer.from(k) })), failure: [range(keys[0] as string)] },
    });
    const events = [
      kube(get('/registry/health')),
      kube(txn('/registry/leases/kube-node-lease/node-1')),
      kube(txn('/registry/leases/kube-node-lease/node-1', '/registry/secrets/ns/s')),
      kube({ ...get('/registry/leases/'), request: range('/registry/leases/', '/registry/leases0') }),
      kube({ ...get('/registry/'), request: range('/registry/', '/registry0') }),
      kube({ ...get('/registry/healthz') }),
      // No key at all (a lease grant): a rule with keys never matches it.
      kube({ service: 'etcdserverpb.Lease', method: 'LeaseGrant', action: 'etcd.lease.lease_grant', eventType: 'admin', request: { op: 'lease_grant' } }),
    ];
    expect(await written(rules, events)).toEqual([2, 4, 5, 6]);
  });

  it('a metadata rule with keys keeps any request reaching into them, before a none rule that would drop it', async () => {
    const rules = [
      { level: 'metadata', keys: [{ prefix: '/registry/secrets/' }] },
      { level: 'none', match: { cn: 'kube-apiserver-*' } },
    ];
    const events = [
      kube(get('/registry/secrets/default/token')),
      kube({ ...get('/registry/'), request: range('/registry/', '/registry0') }),
      kube({ ...get('/registry/'), request: range('/registry/s', '/registry/t') }),
      kube({ ...get('/registry/'), request: range('/registry/a', '/registry/secrets/') }),
      kube(get('/registry/pods/default/web')),
      kube({ request: { op: 'txn', compare: [], success: [{ op: 'txn', failure: [{ op: 'delete_range', key: Buffer.from('/registry/secrets/x') }] }], failure: [] } }),
    ];
    // [/registry/a, /registry/secrets/) ends where the prefix starts: it does not reach in.
    expect(await written(rules, events)).toEqual([0, 1, 2, 5]);
  });

  it('matches the caller by certificate selectors and by role, method groups and outcomes', async () => {
    const tenant = (overrides: Partial<CallEvent>): CallEvent =>
      callEvent({ peer: { address: '10.0.0.2', port: 1, tlsVersion: 'TLSv1.3', identity: fakeIdentity({ cn: 'tenant-a', uri: ['spiffe://example.org/tenant/a'] }) }, roles: ['tenant'], ...overrides });
    expect(await written([{ level: 'none', match: { uri: 'spiffe://example.org/tenant/*' } }], [tenant({}), kube({})])).toEqual([1]);
    expect(await written([{ level: 'none', roles: ['kube-apiserver', 'other'] }], [tenant({}), kube({})])).toEqual([0]);
    expect(await written([{ level: 'none', match: { cn: 'tenant-a' }, roles: ['kube-apiserver'] }], [tenant({}), kube({})])).toEqual([0, 1]);
    expect(await written([{ level: 'none', groups: ['read'] }], [kube(get('/x')), kube({})])).toEqual([1]);
    const failed = kube({ result: { code: 14, message: 'unavailable' } });
    const unknown = kube({ result: { code: 1, message: 'cancelled' }, upstream: { sent: true } });
    expect(await written([{ level: 'none', outcomes: ['success'] }], [kube({}), failed, unknown])).toEqual([1, 2]);
    expect(await written([{ level: 'none', outcomes: ['failure', 'success'] }], [kube({}), failed, unknown])).toEqual([2]);
  });

  it('records every denial, whatever the rules say', async () => {
    const denied = kube({ ...get('/registry/health'), decision: { allowed: false, reason: 'not granted' }, result: { code: 7, message: 'etcdserver: permission denied' } });
    const refusedRenewal = kube({ kind: 'keepalive.deny', service: 'etcdserverpb.Lease', method: 'LeaseKeepAlive', action: 'etcd.lease.lease_keep_alive', eventType: 'admin', decision: { allowed: true, reason: 'stream opened' } });
    const rules = [{ level: 'none' }];
    expect(await written(rules, [kube(get('/registry/health')), denied, refusedRenewal])).toEqual([1, 2]);
  });
});
