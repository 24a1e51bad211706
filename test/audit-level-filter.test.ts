/**
 * Proves AuditConfig.level: a group set to "none" records no allowed call of that group
 * (reads, writes, admin, the Auth service) while the other groups are still recorded, and
 * denials (a denied call, a refused handshake) are recorded whatever the level.
 */
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { auditGroup, createAuditor } from '../src/audit/auditor.js';
import type { CallEvent } from '../src/audit/types.js';
import type { AuditConfig, AuditLevel } from '../src/config/types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { callEvent, handshakeEvent } from './support/audit-events.js';

const read = callEvent({ method: 'Range', action: 'etcd.kv.range', eventType: 'access' });
const write = callEvent();
const admin = callEvent({ service: 'etcdserverpb.Maintenance', method: 'Status', action: 'etcd.maintenance.status', eventType: 'info' });
const auth = callEvent({ service: 'etcdserverpb.Auth', method: 'UserAdd', action: 'etcd.auth.user_add', category: 'iam', eventType: 'admin' });

/** The actions recorded by an auditor with the given levels, after one event of each group and a refused handshake. */
async function recordedActions(level: AuditConfig['level']): Promise<string[]> {
  const out = new PassThrough();
  const chunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => chunks.push(chunk));
  const auditor = await createAuditor(
    { sink: { kind: 'stdout' }, onFailure: 'deny', level, bufferRecords: 100 },
    { metrics: NOOP_METRICS, version: '0.1.0', policyVersion: () => 'p1', stdout: out },
  );
  for (const event of [read, write, admin, auth]) auditor.record(event);
  auditor.handshakeRefused(handshakeEvent());
  await auditor.close();
  return Buffer.concat(chunks)
    .toString('utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => (JSON.parse(line) as { event: { action: string } }).event.action);
}

function levels(off: keyof AuditConfig['level'] | undefined): AuditConfig['level'] {
  const of = (group: keyof AuditConfig['level']): AuditLevel => (group === off ? 'none' : 'metadata');
  return { read: of('read'), write: of('write'), admin: of('admin'), auth: of('auth') };
}

describe('audit levels', () => {
  it('maps calls to groups by category and event type', () => {
    const groups = [read, write, admin, auth].map((event: CallEvent) => auditGroup(event));
    expect(groups).toEqual(['read', 'write', 'admin', 'auth']);
    expect(auditGroup({ category: 'database', eventType: 'admin' })).toBe('admin');
  });

  it('records every group at metadata', async () => {
    expect(await recordedActions(levels(undefined))).toEqual([
      'etcd.kv.range',
      'etcd.kv.put',
      'etcd.maintenance.status',
      'etcd.auth.user_add',
      'etcdgate.tls.handshake',
    ]);
  });

  it('records nothing for a group set to none, and still records the others', async () => {
    expect(await recordedActions(levels('read'))).toEqual(['etcd.kv.put', 'etcd.maintenance.status', 'etcd.auth.user_add', 'etcdgate.tls.handshake']);
    expect(await recordedActions(levels('write'))).toEqual(['etcd.kv.range', 'etcd.maintenance.status', 'etcd.auth.user_add', 'etcdgate.tls.handshake']);
    expect(await recordedActions(levels('admin'))).toEqual(['etcd.kv.range', 'etcd.kv.put', 'etcd.auth.user_add', 'etcdgate.tls.handshake']);
    expect(await recordedActions(levels('auth'))).toEqual(['etcd.kv.range', 'etcd.kv.put', 'etcd.maintenance.status', 'etcdgate.tls.handshake']);
  });

  it('records denials even for a group set to none', async () => {
    const out = new PassThrough();
    const chunks: Buffer[] = [];
    out.on('data', (chunk: Buffer) => chunks.push(chunk));
    const auditor = await createAuditor(
      { sink: { kind: 'stdout' }, onFailure: 'deny', level: { read: 'none', write: 'none', admin: 'none', auth: 'none' }, bufferRecords: 100 },
      { metrics: NOOP_METRICS, version: '0.1.0', policyVersion: () => 'p1', stdout: out },
    );
    auditor.record(read);
    auditor.record({ ...read, decision: { allowed: false, reason: 'not granted' }, result: { code: 7, message: 'etcdserver: permission denied' } });
    auditor.record({ ...write, kind: 'keepalive.deny', decision: { allowed: true, reason: 'stream opened' } });
    await auditor.close();
    const outcomes = Buffer.concat(chunks).toString('utf8').split('\n').filter((line) => line !== '').map((line) => (JSON.parse(line) as { event: { type: string[] } }).event.type);
    expect(outcomes).toEqual([['access', 'denied'], ['change', 'denied']]);
  });
});
