/**
 * The records that share the refused-handshake shape (src/audit/types.ts HandshakeEvent
 * `kind`): an open connection closed after a re-check (`connection.revoked`) and the
 * summary of refusal records not written (`refusals.suppressed`). The direct writer and
 * the reference builder give the same line, byte for byte, and the fields are where
 * docs/audit-schema.md says.
 */
import { describe, expect, it } from 'vitest';
import { buildHandshakeRecord, serializeHandshakeRecord, serializeRecord } from '../src/audit/record.js';
import type { HandshakeEvent } from '../src/audit/types.js';
import { fakeIdentity, handshakeEvent } from './support/audit-events.js';

const context = { eventId: 'e-1', version: '0.1.0', policyVersion: 'p1' };

function bothWays(event: HandshakeEvent): Record<string, unknown> {
  const direct = serializeHandshakeRecord(event, context);
  expect(direct).toBe(serializeRecord(buildHandshakeRecord(event, context)));
  return JSON.parse(direct) as Record<string, unknown>;
}

describe('records of the network defences', () => {
  it('connection.revoked: action etcdgate.tls.recheck, type end/denied, the reason and the verified identity', () => {
    const record = bothWays({ ...handshakeEvent({ identity: fakeIdentity({ cn: 'tenant-a' }) }), kind: 'connection.revoked', reason: 'revoked', error: 'certificate revoked' });
    expect(record).toMatchObject({
      event: { action: 'etcdgate.tls.recheck', type: ['end', 'denied'], reason: 'revoked', outcome: 'failure', category: ['authentication'] },
      error: { message: 'certificate revoked' },
      etcdgate: { event_kind: 'connection.revoked' },
    });
    expect(record['etcdgate']).not.toHaveProperty('suppressed_records');
  });

  it('refusals.suppressed: the count in etcdgate.suppressed_records, with or without a source', () => {
    const { identity: _identity, ...anonymous } = handshakeEvent();
    const withSource = bothWays({ ...anonymous, kind: 'refusals.suppressed', reason: 'suppressed', error: '9980 refused', address: '127.0.0.3', port: 0, suppressed: 9980 });
    expect(withSource).toMatchObject({ event: { action: 'etcdgate.tls.handshake', reason: 'suppressed' }, source: { ip: '127.0.0.3' }, etcdgate: { event_kind: 'refusals.suppressed', suppressed_records: 9980 } });
    const others = bothWays({ ...anonymous, kind: 'refusals.suppressed', reason: 'suppressed', error: 'x', address: '', port: 0, suppressed: 7 });
    expect(others['source']).not.toHaveProperty('ip');
  });

  it('a plain refusal is unchanged: handshake.refused, no suppressed count', () => {
    const record = bothWays({ ...handshakeEvent(), reason: 'no_tls' });
    expect(record).toMatchObject({ event: { action: 'etcdgate.tls.handshake', type: ['start', 'denied'] }, etcdgate: { event_kind: 'handshake.refused' } });
    expect(record['etcdgate']).not.toHaveProperty('suppressed_records');
  });
});
