/**
 * Cost of one audit record on the hot path: serializing a linearizable Range's call
 * record and encoding it into the bytes a batch write carries. Run:
 * `npm run bench:audit`.
 */
import { bench, describe } from 'vitest';
import { serializeCallRecord } from '../src/audit/record.js';
import type { CallEvent } from '../src/audit/types.js';
import { callEvent } from '../test/support/audit-events.js';

const context = { eventId: '018f3a2b-7c4d-7e5f-8a9b-0c1d2e3f4a5b', version: '0.1.0', policyVersion: 'abcdef012345' };

/** A Range as the bench's load makes it: one small key, linearizable, allowed, answered. */
const range: CallEvent = callEvent({
  method: 'Range',
  action: 'etcd.kv.range',
  eventType: 'access',
  start: new Date(),
  request: { op: 'range', key: Buffer.from('/bench/key-000123'), details: { serializable: false, limit: 0 } },
  decision: { allowed: true, role: 'bench', rule: 'prefix /bench/ readwrite', reason: 'granted' },
  result: { code: 0, message: '', revision: '123456', count: 1, bytes: 164 },
});

const batch = Buffer.allocUnsafe(1024 * 1024);

describe('audit record', () => {
  bench('serializeCallRecord (Range)', () => {
    serializeCallRecord(range, context);
  });
  bench('serializeCallRecord + line + UTF-8 into a batch', () => {
    const line = serializeCallRecord(range, context, '\n');
    const size = Buffer.byteLength(line, 'utf8');
    batch.write(line, 0, size, 'utf8');
  });
});
