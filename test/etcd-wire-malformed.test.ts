/**
 * Proves that malformed request bytes are refused with DecodeError and nothing else:
 * hand-made truncations and illegal tags for the wire reader, then random bytes and
 * randomly mutated valid messages for every decoder in the method table (fast-check).
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { METHODS } from '../src/etcd/methods.js';
import { DecodeError } from '../src/etcd/types.js';
import type { DecodedRequest, RequestDecoder } from '../src/etcd/types.js';
import { uint64Decimal, WireReader } from '../src/etcd/wire.js';
import { encode } from './support/etcd-messages.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const hex = (h: string): Buffer => Buffer.from(h.replace(/ /g, ''), 'hex');

/** Decodes, and fails the test if anything other than DecodeError escapes. */
function decodeOrDecodeError(decode: RequestDecoder, message: Buffer): DecodedRequest | DecodeError {
  try {
    return decode(message);
  } catch (err) {
    if (err instanceof DecodeError) return err;
    throw new Error(`decoder threw a non-DecodeError for ${message.toString('hex')}: ${String(err)}`);
  }
}

function decodeAt(path: string, message: Buffer): DecodedRequest {
  const spec = METHODS.get(path);
  if (spec === undefined) throw new Error(`no method ${path}`);
  return spec.decode(message);
}

describe('wire reader', () => {
  const cases: Array<[string, string]> = [
    ['truncated tag varint', '80'],
    ['truncated value varint', '18 ff ff'],
    ['varint longer than 10 bytes', '18 ff ff ff ff ff ff ff ff ff ff 01'],
    ['length past the end', '0a 05 61 62'],
    ['length varint truncated', '0a 80'],
    ['fixed64 past the end', '49 00 00 00'],
    ['fixed32 past the end', '4d 00 00'],
    ['field number 0', '00 00'],
    ['wire type 3 (start group)', '0b'],
    ['wire type 4 (end group)', '0c'],
    ['wire type 6', '0e 00'],
    ['wire type 7', '0f 00'],
    ['tag above 32 bits', 'ff ff ff ff 7f'],
  ];
  for (const [what, bytes] of cases) {
    it(`refuses ${what}`, () => {
      const r = new WireReader(hex(bytes));
      expect(() => {
        while (r.next()) r.skip();
      }).toThrow(DecodeError);
    });
  }

  it('prints every 64-bit value exactly in decimal', () => {
    const check = (hi: number, lo: number): void => {
      expect(uint64Decimal(hi, lo)).toBe(((BigInt(hi) << 32n) | BigInt(lo)).toString());
    };
    for (const [hi, lo] of [[0, 0], [0x1fffff, 0xffffffff], [0x200000, 0], [0xffffffff, 0xffffffff], [0x80000000, 0], [0x00989680, 0]] as const) check(hi, lo);
    fc.assert(fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), check), { numRuns: 10000 });
  });

  it('skips unknown fixed32, fixed64 and length-delimited fields', () => {
    // field 20 fixed32, field 21 fixed64, field 22 bytes, then key (field 1).
    const msg = Buffer.concat([hex('a5 01 01 02 03 04'), hex('a9 01 01 02 03 04 05 06 07 08'), hex('b2 01 02 ff ff'), hex('0a 02 2f 61')]);
    const d = decodeAt('/etcdserverpb.KV/Range', msg);
    expect(d.summary.key?.toString()).toBe('/a');
  });

  it('lets the last occurrence of a scalar win', () => {
    const msg = Buffer.concat([
      encode('etcdserverpb.RangeRequest', { key: b('/first'), limit: 1 }),
      encode('etcdserverpb.RangeRequest', { key: b('/second'), limit: 2 }),
    ]);
    const d = decodeAt('/etcdserverpb.KV/Range', msg);
    expect(d.summary.key?.toString()).toBe('/second');
    expect(d.summary.details).toEqual({ limit: '2' });
  });

  it('accepts a varint with bits beyond 64 in its tenth byte, keeping the low 64 bits', () => {
    // lease (field 3) = ten bytes, all payload bits set: -1 as int64.
    const d = decodeAt('/etcdserverpb.KV/Put', hex('18 ff ff ff ff ff ff ff ff ff 7f'));
    expect(d.leaseChecks).toEqual([{ leaseId: '-1', kind: 'write' }]);
  });

  it('refuses a known field sent with the wrong wire type', () => {
    expect(() => decodeAt('/etcdserverpb.KV/Range', hex('08 01'))).toThrow(DecodeError); // key as varint
    expect(() => decodeAt('/etcdserverpb.KV/Put', hex('1a 00'))).toThrow(DecodeError); // lease as bytes
    expect(() => decodeAt('/etcdserverpb.KV/Put', hex('1d 00 00 00 00'))).toThrow(DecodeError); // lease as fixed32
  });

  it('reads repeated enums both packed and unpacked', () => {
    // WatchRequest{create_request{filters: [1] unpacked, then [0,1] packed}}
    const create = hex('28 01 2a 02 00 01');
    const msg = Buffer.concat([Buffer.from([0x0a, create.length]), create]);
    const d = decodeAt('/etcdserverpb.Watch/Watch', msg);
    expect(d.summary.details).toMatchObject({ filters: 'NODELETE,NOPUT,NODELETE' });
  });
});

/** One valid, non-trivial message per request type, to mutate. */
const samples: ReadonlyArray<[string, Buffer]> = [
  ['/etcdserverpb.KV/Range', encode('etcdserverpb.RangeRequest', { key: b('/registry/'), range_end: b('/registry0'), limit: 500, revision: '77' })],
  ['/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: b('/a'), value: b('v'), lease: '9007199254740993', prev_kv: true })],
  ['/etcdserverpb.KV/DeleteRange', encode('etcdserverpb.DeleteRangeRequest', { key: b('/a'), range_end: b('/b'), prev_kv: true })],
  [
    '/etcdserverpb.KV/Txn',
    encode('etcdserverpb.TxnRequest', {
      compare: [{ key: b('/c'), target: 'MOD', mod_revision: '5' }],
      success: [{ request_put: { key: b('/p'), lease: '3' } }, { request_txn: { failure: [{ request_delete_range: { key: b('/d') } }] } }],
      failure: [{ request_range: { key: b('/r'), range_end: b('\x00') } }],
    }),
  ],
  ['/etcdserverpb.KV/Compact', encode('etcdserverpb.CompactionRequest', { revision: '100', physical: true })],
  ['/etcdserverpb.Watch/Watch', encode('etcdserverpb.WatchRequest', { create_request: { key: b('/w'), range_end: b('/x'), filters: ['NOPUT', 'NODELETE'], prev_kv: true } })],
  ['/etcdserverpb.Watch/Watch', encode('etcdserverpb.WatchRequest', { cancel_request: { watch_id: '4' } })],
  ['/etcdserverpb.Lease/LeaseGrant', encode('etcdserverpb.LeaseGrantRequest', { TTL: '60', ID: '1' })],
  ['/etcdserverpb.Lease/LeaseKeepAlive', encode('etcdserverpb.LeaseKeepAliveRequest', { ID: '-5' })],
  ['/etcdserverpb.Lease/LeaseTimeToLive', encode('etcdserverpb.LeaseTimeToLiveRequest', { ID: '5', keys: true })],
  ['/etcdserverpb.Cluster/MemberAdd', encode('etcdserverpb.MemberAddRequest', { peerURLs: ['https://10.0.0.1:2380'], isLearner: true })],
  ['/etcdserverpb.Maintenance/Alarm', encode('etcdserverpb.AlarmRequest', { action: 'ACTIVATE', memberID: '7', alarm: 'NOSPACE' })],
  ['/etcdserverpb.Maintenance/Downgrade', encode('etcdserverpb.DowngradeRequest', { action: 'ENABLE', version: '3.4' })],
  ['/etcdserverpb.Auth/UserAdd', encode('etcdserverpb.AuthUserAddRequest', { name: 'u', password: 'p', options: { no_password: true } })],
  ['/etcdserverpb.Auth/RoleGrantPermission', encode('etcdserverpb.AuthRoleGrantPermissionRequest', { name: 'r', perm: { permType: 'READ', key: b('/k') } })],
  ['/v3lockpb.Lock/Lock', encode('v3lockpb.LockRequest', { name: b('l'), lease: '2' })],
  ['/v3electionpb.Election/Proclaim', encode('v3electionpb.ProclaimRequest', { leader: { name: b('e'), key: b('e/1'), rev: '2', lease: '3' }, value: b('v') })],
];

describe('every decoder on hostile input', () => {
  const decoders = [...METHODS.values()];

  it('returns or throws DecodeError on random bytes, never anything else', () => {
    fc.assert(
      fc.property(fc.constantFrom(...decoders), fc.uint8Array({ maxLength: 64 }), (spec, bytes) => {
        decodeOrDecodeError(spec.decode, Buffer.from(bytes));
      }),
      { numRuns: 5000 },
    );
  });

  it('returns or throws DecodeError on mutated valid messages', () => {
    const mutation = fc.oneof(
      fc.record({ kind: fc.constant('flip' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 12 }) }),
      fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 4 }) }),
    );
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.array(mutation, { minLength: 1, maxLength: 4 }), ([path, valid], mutations) => {
        let msg = Buffer.from(valid);
        for (const m of mutations) {
          const at = msg.length === 0 ? 0 : m.at % (msg.length + 1);
          switch (m.kind) {
            case 'flip':
              if (at < msg.length) msg[at] = m.value;
              break;
            case 'truncate':
              msg = msg.subarray(0, at);
              break;
            case 'insert':
              msg = Buffer.concat([msg.subarray(0, at), Buffer.from(m.bytes), msg.subarray(at)]);
              break;
            case 'delete':
              msg = Buffer.concat([msg.subarray(0, at), msg.subarray(at + m.count)]);
              break;
          }
        }
        const spec = METHODS.get(path);
        expect(spec).toBeDefined();
        if (spec !== undefined) decodeOrDecodeError(spec.decode, msg);
      }),
      { numRuns: 5000 },
    );
  });

  it('decodes every unmutated sample', () => {
    for (const [path, msg] of samples) {
      expect(decodeOrDecodeError((m) => decodeAt(path, m), msg)).not.toBeInstanceOf(DecodeError);
    }
  });

  it('refuses a Txn cut anywhere but between its top-level fields', () => {
    const pieces = [
      encode('etcdserverpb.TxnRequest', { compare: [{ key: b('/c'), target: 'MOD', mod_revision: '5' }] }),
      encode('etcdserverpb.TxnRequest', { success: [{ request_put: { key: b('/p'), lease: '3' } }] }),
      encode('etcdserverpb.TxnRequest', { failure: [{ request_range: { key: b('/r'), range_end: b('\x00') } }] }),
    ];
    const txn = Buffer.concat(pieces);
    const boundaries = new Set([pieces[0]!.length, pieces[0]!.length + pieces[1]!.length]);
    for (let n = 1; n < txn.length; n++) {
      const result = decodeOrDecodeError((m) => decodeAt('/etcdserverpb.KV/Txn', m), txn.subarray(0, n));
      expect(result instanceof DecodeError, `cut at ${n}`).toBe(!boundaries.has(n));
    }
  });
});
