/**
 * The encryption transforms on etcd's wire format, without etcd: values under an
 * encrypted prefix are sealed in Put and Txn requests (both branches, nested) and opened
 * in Range, Put, DeleteRange, Txn and Watch responses; every other byte survives the
 * rewrite exactly; what cannot work on ciphertext is refused; what cannot be opened
 * (tampered, copied to another key, unknown key, plaintext without identity) fails
 * naming the key. Both providers run every case. Messages are encoded with protobufjs
 * from etcdgate's protos, the bytes a real client or etcd would send.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EncryptionConfig, EncryptionProviderConfig } from '../src/config/types.js';
import { Keyring } from '../src/encryption/keyring.js';
import { parseStoredForm, storedHeader } from '../src/encryption/stored-form.js';
import { decryptResponse, encryptRequest } from '../src/encryption/transforms.js';
import { NOOP_METRICS, type Metrics } from '../src/observability/metrics-types.js';
import { decode, encode } from './support/etcd-messages.js';
import { makeKeyDir, type KeyDir } from './support/encryption-keys.js';

let keys: KeyDir;
beforeAll(async () => {
  keys = await makeKeyDir();
});
afterAll(async () => {
  await keys.remove();
});

const PREFIX = '/secret/';
const b = (text: string): Buffer => Buffer.from(text, 'utf8');

function ring(providers: EncryptionProviderConfig[], metrics: Metrics = NOOP_METRICS): Keyring {
  const config: EncryptionConfig = { resources: [{ name: 'secrets', prefixes: [PREFIX], ranges: [], providers }] };
  return Keyring.load(config, metrics);
}

/** Seals `value` for `key` as a Put through `keyring` would, and returns the stored form. */
function seal(keyring: Keyring, key: string, value: string): Buffer {
  const out = encryptRequest(keyring, 'put', encode('etcdserverpb.PutRequest', { key: b(key), value: b(value) }));
  if (out.kind !== 'rewritten') throw new Error(`expected a rewritten put, got ${out.kind}`);
  return decode('etcdserverpb.PutRequest', out.message)['value'] as Buffer;
}

function kv(key: string, value: Buffer | string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { key: b(key), value: typeof value === 'string' ? b(value) : value, create_revision: 5, mod_revision: 7, version: 2, ...extra };
}

function opened(keyring: Keyring, kind: Parameters<typeof decryptResponse>[1], message: Buffer): Buffer {
  const out = decryptResponse(keyring, kind, message);
  if (!out.ok) throw new Error(`expected success, got ${out.failure.reason}: ${out.failure.detail}`);
  return out.message;
}

/** A field protobufjs does not know (number 99, varint 1): what a newer etcd might add. */
const UNKNOWN_FIELD = Buffer.from([0x98, 0x06, 0x01]);

for (const provider of ['aesgcm', 'secretbox'] as const) {
  describe(`provider ${provider}`, () => {
    let keyring: Keyring;
    let file1: string;
    beforeAll(() => {
      file1 = keys.key(`${provider}-k1`);
      keyring = ring([{ kind: provider, keys: [{ name: 'k1', file: file1 }] }]);
    });

    it('seals a Put value under the prefix with a header naming provider and key, and leaves other fields as they were', () => {
      const request = Buffer.concat([encode('etcdserverpb.PutRequest', { key: b('/secret/a'), value: b('hunter2'), lease: 42, prev_kv: true }), UNKNOWN_FIELD]);
      const out = encryptRequest(keyring, 'put', request);
      expect(out.kind).toBe('rewritten');
      if (out.kind !== 'rewritten') return;
      const message = decode('etcdserverpb.PutRequest', out.message);
      expect(message['key']).toEqual(b('/secret/a'));
      expect(message['lease']).toBe('42');
      expect(message['prev_kv']).toBe(true);
      const stored = message['value'] as Buffer;
      expect(stored.includes(b('hunter2'))).toBe(false);
      expect(stored.subarray(0, storedHeader(provider, 'k1').length)).toEqual(storedHeader(provider, 'k1'));
      // The unknown field is still there, byte for byte, at the end.
      expect(out.message.subarray(-UNKNOWN_FIELD.length)).toEqual(UNKNOWN_FIELD);
      // Random nonces: the same value sealed twice differs.
      expect(seal(keyring, '/secret/a', 'hunter2').equals(stored)).toBe(false);
    });

    it('leaves a Put outside the prefix, and one with ignore_value, untouched', () => {
      expect(encryptRequest(keyring, 'put', encode('etcdserverpb.PutRequest', { key: b('/public/a'), value: b('x') })).kind).toBe('unchanged');
      expect(encryptRequest(keyring, 'put', encode('etcdserverpb.PutRequest', { key: b('/secret/a'), ignore_value: true })).kind).toBe('unchanged');
      // The prefix is bytes: "/secret" without the slash is outside.
      expect(encryptRequest(keyring, 'put', encode('etcdserverpb.PutRequest', { key: b('/secret'), value: b('x') })).kind).toBe('unchanged');
    });

    it('seals an empty value too, so no value under the prefix reaches etcd unsealed', () => {
      const stored = seal(keyring, '/secret/empty', '');
      expect(stored.length).toBeGreaterThan(storedHeader(provider, 'k1').length);
      const response = encode('etcdserverpb.RangeResponse', { kvs: [kv('/secret/empty', stored)] });
      const kvs = decode('etcdserverpb.RangeResponse', opened(keyring, 'range', response))['kvs'] as Record<string, unknown>[];
      expect(kvs[0]?.['value']).toBeUndefined();
    });

    it('opens every value of a Range response under the prefix and keeps the others and every other byte', () => {
      const response = encode('etcdserverpb.RangeResponse', {
        header: { revision: 9 },
        kvs: [kv('/public/x', 'plain'), kv('/secret/a', seal(keyring, '/secret/a', 'one'), { lease: 3 }), kv('/secret/b', seal(keyring, '/secret/b', 'two'))],
        more: true,
        count: 3,
      });
      const out = opened(keyring, 'range', Buffer.concat([response, UNKNOWN_FIELD]));
      expect(out.subarray(-UNKNOWN_FIELD.length)).toEqual(UNKNOWN_FIELD);
      const expected = encode('etcdserverpb.RangeResponse', {
        header: { revision: 9 },
        kvs: [kv('/public/x', 'plain'), kv('/secret/a', 'one', { lease: 3 }), kv('/secret/b', 'two')],
        more: true,
        count: 3,
      });
      expect(out).toEqual(Buffer.concat([expected, UNKNOWN_FIELD]));
    });

    it('returns the very same buffer when nothing in a response is encrypted (keys_only, count_only, other prefixes)', () => {
      for (const response of [
        encode('etcdserverpb.RangeResponse', { kvs: [kv('/public/x', 'plain')], count: 1 }),
        encode('etcdserverpb.RangeResponse', { kvs: [{ key: b('/secret/a'), mod_revision: 4 }], count: 1 }),
        encode('etcdserverpb.RangeResponse', { count: 12 }),
      ]) {
        const out = decryptResponse(keyring, 'range', response);
        expect(out.ok && out.message === response).toBe(true);
      }
    });

    it('opens prev_kv of Put and prev_kvs of DeleteRange', () => {
      const put = encode('etcdserverpb.PutResponse', { header: { revision: 3 }, prev_kv: kv('/secret/a', seal(keyring, '/secret/a', 'old')) });
      expect(decode('etcdserverpb.PutResponse', opened(keyring, 'put', put))['prev_kv']).toMatchObject({ value: b('old') });
      const del = encode('etcdserverpb.DeleteRangeResponse', { deleted: 2, prev_kvs: [kv('/secret/a', seal(keyring, '/secret/a', 'x')), kv('/secret/b', seal(keyring, '/secret/b', 'y'))] });
      const prev = decode('etcdserverpb.DeleteRangeResponse', opened(keyring, 'delete-range', del))['prev_kvs'] as Record<string, unknown>[];
      expect(prev.map((p) => (p['value'] as Buffer).toString())).toEqual(['x', 'y']);
    });

    it('seals the puts of both Txn branches and of nested Txns, and leaves the rest of the Txn as it was', () => {
      const nested = { compare: [{ key: b('/secret/n'), target: 'MOD', result: 'EQUAL', mod_revision: 0 }], success: [{ request_put: { key: b('/secret/n'), value: b('marker-deep-7a8b9c') } }] };
      const request = encode('etcdserverpb.TxnRequest', {
        compare: [{ key: b('/secret/a'), target: 'VERSION', result: 'GREATER', version: 0 }],
        success: [{ request_put: { key: b('/secret/a'), value: b('marker-yes-1a2b3c') } }, { request_range: { key: b('/secret/a') } }, { request_put: { key: b('/public/p'), value: b('open') } }],
        failure: [{ request_put: { key: b('/secret/b'), value: b('marker-no-4d5e6f') } }, { request_txn: nested }],
      });
      const out = encryptRequest(keyring, 'txn', request);
      expect(out.kind).toBe('rewritten');
      if (out.kind !== 'rewritten') return;
      expect(out.message.includes(b('marker-yes-1a2b3c'))).toBe(false);
      expect(out.message.includes(b('marker-no-4d5e6f'))).toBe(false);
      expect(out.message.includes(b('marker-deep-7a8b9c'))).toBe(false);
      expect(out.message.includes(b('open'))).toBe(true);
      const txn = decode('etcdserverpb.TxnRequest', out.message) as { success: Record<string, Record<string, unknown>>[]; failure: Record<string, Record<string, unknown>>[] };
      const value = (op: Record<string, Record<string, unknown>> | undefined): Buffer => op?.['request_put']?.['value'] as Buffer;
      expect(parseStoredForm(value(txn.success[0])).kind).toBe('sealed');
      expect(value(txn.success[2])).toEqual(b('open'));
      expect(parseStoredForm(value(txn.failure[0])).kind).toBe('sealed');
      const inner = txn.failure[1]?.['request_txn'] as { success: Record<string, Record<string, unknown>>[] };
      expect(parseStoredForm(value(inner.success[0])).kind).toBe('sealed');
      // Compares and the Range are as they were.
      expect(decode('etcdserverpb.TxnRequest', out.message)['compare']).toEqual(decode('etcdserverpb.TxnRequest', request)['compare']);
    });

    it('refuses a Txn comparing the VALUE of an encrypted key, in a nested Txn too, and allows it elsewhere', () => {
      const valueCompare = (key: string, rangeEnd?: string) => ({ key: b(key), target: 'VALUE', result: 'EQUAL', value: b('guess'), ...(rangeEnd === undefined ? {} : { range_end: b(rangeEnd) }) });
      const refused = encryptRequest(keyring, 'txn', encode('etcdserverpb.TxnRequest', { compare: [valueCompare('/secret/a')] }));
      expect(refused).toEqual({ kind: 'refused', refusal: { kind: 'value-compare', key: b('/secret/a'), resource: 'secrets' } });
      // A range compare that only overlaps the prefix.
      expect(encryptRequest(keyring, 'txn', encode('etcdserverpb.TxnRequest', { compare: [valueCompare('/s', '/t')] })).kind).toBe('refused');
      const nested = encode('etcdserverpb.TxnRequest', { success: [{ request_txn: { compare: [valueCompare('/secret/a')] } }] });
      expect(encryptRequest(keyring, 'txn', nested).kind).toBe('refused');
      expect(encryptRequest(keyring, 'txn', encode('etcdserverpb.TxnRequest', { compare: [valueCompare('/public/a')] })).kind).toBe('unchanged');
    });

    it('refuses a Range sorted by VALUE over an encrypted range, and allows other sorts', () => {
      const range = (sort_target: string) => encode('etcdserverpb.RangeRequest', { key: b('/'), range_end: b('0'), sort_order: 'ASCEND', sort_target });
      expect(encryptRequest(keyring, 'range', range('VALUE')).kind).toBe('refused');
      expect(encryptRequest(keyring, 'range', range('MOD')).kind).toBe('unchanged');
      const txn = encode('etcdserverpb.TxnRequest', { success: [{ request_range: { key: b('/secret/'), range_end: b('/secret0'), sort_target: 'VALUE' } }] });
      expect(encryptRequest(keyring, 'txn', txn).kind).toBe('refused');
    });

    it('opens the values of nested Txn responses', () => {
      const response = encode('etcdserverpb.TxnResponse', {
        succeeded: true,
        responses: [
          { response_range: { kvs: [kv('/secret/a', seal(keyring, '/secret/a', 'r1'))] } },
          { response_put: { prev_kv: kv('/secret/b', seal(keyring, '/secret/b', 'p1')) } },
          { response_txn: { responses: [{ response_delete_range: { prev_kvs: [kv('/secret/c', seal(keyring, '/secret/c', 'd1'))] } }] } },
        ],
      });
      const out = opened(keyring, 'txn', response);
      for (const plain of ['r1', 'p1', 'd1']) expect(out.includes(b(plain))).toBe(true);
      expect(parseStoredForm(out).kind).toBe('plaintext');
      expect(out.includes(b('etcdgate:enc:'))).toBe(false);
    });

    it('opens kv and prev_kv of watch events', () => {
      const response = encode('etcdserverpb.WatchResponse', {
        watch_id: 4,
        events: [
          { type: 'PUT', kv: kv('/secret/a', seal(keyring, '/secret/a', 'new')), prev_kv: kv('/secret/a', seal(keyring, '/secret/a', 'old')) },
          { type: 'DELETE', kv: { key: b('/secret/a'), mod_revision: 9 } },
        ],
      });
      const events = decode('etcdserverpb.WatchResponse', opened(keyring, 'watch', response))['events'] as Record<string, Record<string, unknown>>[];
      expect(events[0]?.['kv']?.['value']).toEqual(b('new'));
      expect(events[0]?.['prev_kv']?.['value']).toEqual(b('old'));
      expect(events[1]?.['kv']?.['value']).toBeUndefined();
    });

    it('fails, naming the key, on a tampered value, a value copied from another key, and a relabelled header', () => {
      const stored = seal(keyring, '/secret/a', 'secret value');
      const tampered = Buffer.from(stored);
      tampered[tampered.length - 20] = (tampered[tampered.length - 20] ?? 0) ^ 0x01;
      const range = (key: string, value: Buffer) => encode('etcdserverpb.RangeResponse', { kvs: [kv(key, value)] });
      const failure = (message: Buffer) => {
        const out = decryptResponse(keyring, 'range', message);
        if (out.ok) throw new Error('expected a failure');
        return out.failure;
      };
      expect(failure(range('/secret/a', tampered))).toMatchObject({ key: b('/secret/a'), resource: 'secrets', reason: 'authentication' });
      expect(failure(range('/secret/b', stored))).toMatchObject({ key: b('/secret/b'), reason: 'authentication' });
      const relabelled = Buffer.concat([storedHeader(provider, 'k2'), stored.subarray(storedHeader(provider, 'k1').length)]);
      expect(failure(range('/secret/a', relabelled))).toMatchObject({ reason: 'unknown_key' });
      expect(failure(range('/secret/a', b('plain text')))).toMatchObject({ reason: 'plaintext' });
      expect(failure(range('/secret/a', b('etcdgate:enc:v9:x:y:zz')))).toMatchObject({ reason: 'malformed' });
      // No failure detail ever carries the value.
      for (const value of [tampered, stored, relabelled]) {
        const detail = JSON.stringify(failure(range('/secret/zz', value)));
        expect(detail).not.toContain('secret value');
      }
    });

    it('round-trips arbitrary values and keys under the prefix (property)', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 2048 }), fc.uint8Array({ maxLength: 64 }), (valueBytes, suffix) => {
          const key = Buffer.concat([b(PREFIX), Buffer.from(suffix)]);
          const value = Buffer.from(valueBytes);
          const put = encryptRequest(keyring, 'put', encode('etcdserverpb.PutRequest', { key, value }));
          if (put.kind !== 'rewritten') return false;
          const stored = decode('etcdserverpb.PutRequest', put.message)['value'] as Buffer;
          const response = encode('etcdserverpb.RangeResponse', { kvs: [{ key, value: stored, mod_revision: 2 }] });
          const kvs = decode('etcdserverpb.RangeResponse', opened(keyring, 'range', response))['kvs'] as Record<string, unknown>[];
          // An empty value comes back left out, as etcd writes it.
          return ((kvs[0]?.['value'] as Buffer | undefined) ?? Buffer.alloc(0)).equals(value) && (kvs[0]?.['key'] as Buffer).equals(key);
        }),
        { numRuns: 200 },
      );
    });
  });
}

describe('keyring rules', () => {
  it('writes with the first key of the first provider and reads with every listed key', () => {
    const old = keys.key('rules-old');
    const next = keys.key('rules-new');
    const before = ring([{ kind: 'aesgcm', keys: [{ name: 'old', file: old }] }]);
    const sealedOld = seal(before, '/secret/a', 'v');
    const after = ring([
      { kind: 'secretbox', keys: [{ name: 'new', file: next }] },
      { kind: 'aesgcm', keys: [{ name: 'old', file: old }] },
    ]);
    const sealedNew = seal(after, '/secret/a', 'v');
    const form = parseStoredForm(sealedNew);
    expect(form.kind === 'sealed' && `${form.provider}:${form.keyName}`).toBe('secretbox:new');
    for (const stored of [sealedOld, sealedNew]) {
      const out = opened(after, 'range', encode('etcdserverpb.RangeResponse', { kvs: [kv('/secret/a', stored)] }));
      expect(out.includes(b('etcdgate:enc:'))).toBe(false);
    }
    // The old keyring does not know the new key.
    expect(decryptResponse(before, 'range', encode('etcdserverpb.RangeResponse', { kvs: [kv('/secret/a', sealedNew)] })).ok).toBe(false);
  });

  it('with identity listed, reads plaintext (and counts it); with identity first, writes plaintext', () => {
    const file = keys.key('rules-identity');
    const counted: string[] = [];
    const metrics: Metrics = { ...NOOP_METRICS, plaintextRead: (resource) => counted.push(resource) };
    const migrating = ring([{ kind: 'aesgcm', keys: [{ name: 'k', file }] }, { kind: 'identity' }], metrics);
    const response = encode('etcdserverpb.RangeResponse', { kvs: [kv('/secret/a', 'legacy')] });
    const out = decryptResponse(migrating, 'range', response);
    expect(out.ok && out.message === response).toBe(true);
    expect(counted).toEqual(['secrets']);
    const decrypting = ring([{ kind: 'identity' }, { kind: 'aesgcm', keys: [{ name: 'k', file }] }]);
    expect(encryptRequest(decrypting, 'put', encode('etcdserverpb.PutRequest', { key: b('/secret/a'), value: b('x') })).kind).toBe('unchanged');
    const sealed = seal(migrating, '/secret/a', 'was sealed');
    expect(opened(decrypting, 'range', encode('etcdserverpb.RangeResponse', { kvs: [kv('/secret/a', sealed)] })).includes(b('was sealed'))).toBe(true);
  });

  it('counts encryptions and decryptions by resource, provider and key, and failures by reason', () => {
    const file = keys.key('rules-metrics');
    const seen: string[] = [];
    const metrics: Metrics = {
      ...NOOP_METRICS,
      valueEncrypted: (r, p, k) => seen.push(`enc ${r} ${p} ${k}`),
      valueDecrypted: (r, p, k) => seen.push(`dec ${r} ${p} ${k}`),
      decryptionFailed: (r, reason) => seen.push(`fail ${r} ${reason}`),
    };
    const keyring = ring([{ kind: 'aesgcm', keys: [{ name: 'm', file }] }], metrics);
    const stored = seal(keyring, '/secret/a', 'v');
    opened(keyring, 'range', encode('etcdserverpb.RangeResponse', { kvs: [kv('/secret/a', stored)] }));
    decryptResponse(keyring, 'range', encode('etcdserverpb.RangeResponse', { kvs: [kv('/secret/b', stored)] }));
    expect(seen).toEqual(['enc secrets aesgcm m', 'dec secrets aesgcm m', 'fail secrets authentication']);
  });
});

describe('values remembered once opened (cache.decryptedValues)', () => {
  const CONFIG = (file: string): EncryptionConfig => ({ resources: [{ name: 'secrets', prefixes: [PREFIX], ranges: [], providers: [{ kind: 'aesgcm', keys: [{ name: 'c', file }] }] }] });

  function counting(): { metrics: Metrics; seen: string[] } {
    const seen: string[] = [];
    return {
      seen,
      metrics: {
        ...NOOP_METRICS,
        valueDecrypted: (r, p, k) => seen.push(`dec ${r} ${p} ${k}`),
        decryptCacheHit: (r) => seen.push(`hit ${r}`),
        decryptionFailed: (r, reason) => seen.push(`fail ${r} ${reason}`),
      },
    };
  }

  const rangeOf = (key: string, stored: Buffer): Buffer => encode('etcdserverpb.RangeResponse', { kvs: [kv(key, stored)] });
  const valueOf = (keyring: Keyring, key: string, stored: Buffer): unknown => {
    const kvs = decode('etcdserverpb.RangeResponse', opened(keyring, 'range', rangeOf(key, stored)))['kvs'] as Record<string, unknown>[];
    return kvs[0]?.['value'];
  };

  it('serves a re-read of the same stored bytes at the same key without a decipher, counted as decrypted and as a hit', () => {
    const { metrics, seen } = counting();
    const keyring = Keyring.load(CONFIG(keys.key('cache-hit')), metrics, { openedCacheBytes: 1 << 20 });
    const stored = seal(keyring, '/secret/a', 'remember me');
    const response = rangeOf('/secret/a', stored);
    const first = opened(keyring, 'range', response);
    const second = opened(keyring, 'range', response);
    expect(second).toEqual(first);
    expect(first.includes(b('remember me'))).toBe(true);
    expect(seen).toEqual(['dec secrets aesgcm c', 'hit secrets', 'dec secrets aesgcm c']);
  });

  it('opens and checks again whatever differs: a tampered byte fails, the same bytes at another key fail, a new value is opened', () => {
    const { metrics, seen } = counting();
    const keyring = Keyring.load(CONFIG(keys.key('cache-miss')), metrics, { openedCacheBytes: 1 << 20 });
    const stored = seal(keyring, '/secret/a', 'original');
    expect(valueOf(keyring, '/secret/a', stored)).toEqual(b('original'));
    seen.length = 0;
    for (let i = 0; i < stored.length; i += 7) {
      const tampered = Buffer.from(stored);
      tampered[i] = (tampered[i] ?? 0) ^ 0x01;
      const out = decryptResponse(keyring, 'range', rangeOf('/secret/a', tampered));
      expect(out.ok).toBe(false);
    }
    expect(seen.some((s) => s.startsWith('hit'))).toBe(false);
    expect(decryptResponse(keyring, 'range', rangeOf('/secret/b', stored)).ok).toBe(false);
    // Still remembered for its own key after all that: a tampered read does not evict.
    seen.length = 0;
    expect(valueOf(keyring, '/secret/a', stored)).toEqual(b('original'));
    expect(seen[0]).toBe('hit secrets');
    const rewritten = seal(keyring, '/secret/a', 'rewritten');
    expect(valueOf(keyring, '/secret/a', rewritten)).toEqual(b('rewritten'));
  });

  it('stays within its bytes, keeps no value over an eighth of them, and remembers nothing at 0', () => {
    const file = keys.key('cache-bounds');
    const bounded = counting();
    const maxBytes = 64 * 1024;
    const keyring = Keyring.load(CONFIG(file), bounded.metrics, { openedCacheBytes: maxBytes });
    // 200 values of 1 KiB: about 2 KiB each with the stored form, so at most ~32 fit.
    const stored = Array.from({ length: 200 }, (_, i) => seal(keyring, `/secret/k${i}`, 'x'.repeat(1024)));
    stored.forEach((s, i) => opened(keyring, 'range', rangeOf(`/secret/k${i}`, s)));
    const hitsOn = (indexes: number[]): number => {
      bounded.seen.length = 0;
      for (const i of indexes) opened(keyring, 'range', rangeOf(`/secret/k${i}`, stored[i] as Buffer));
      return bounded.seen.filter((s) => s.startsWith('hit')).length;
    };
    // The 16 read last are remembered; the first ones were pushed out long ago.
    expect(hitsOn(Array.from({ length: 16 }, (_, i) => 199 - i))).toBe(16);
    expect(hitsOn(Array.from({ length: 16 }, (_, i) => i))).toBe(0);
    // A value larger than an eighth of the cache is opened every time.
    const big = seal(keyring, '/secret/big', 'y'.repeat(maxBytes / 8));
    bounded.seen.length = 0;
    opened(keyring, 'range', rangeOf('/secret/big', big));
    opened(keyring, 'range', rangeOf('/secret/big', big));
    expect(bounded.seen.filter((s) => s.startsWith('hit'))).toEqual([]);

    const off = counting();
    const none = Keyring.load(CONFIG(file), off.metrics, { openedCacheBytes: 0 });
    const value = seal(none, '/secret/a', 'v');
    opened(none, 'range', rangeOf('/secret/a', value));
    opened(none, 'range', rangeOf('/secret/a', value));
    expect(off.seen).toEqual(['dec secrets aesgcm c', 'dec secrets aesgcm c']);
  });

  it('belongs to its keyring: a keyring loaded again (a reload) remembers nothing', () => {
    const file = keys.key('cache-reload');
    const { metrics, seen } = counting();
    const before = Keyring.load(CONFIG(file), metrics, { openedCacheBytes: 1 << 20 });
    const stored = seal(before, '/secret/a', 'v');
    opened(before, 'range', rangeOf('/secret/a', stored));
    const after = Keyring.load(CONFIG(file), metrics, { openedCacheBytes: 1 << 20 });
    seen.length = 0;
    opened(after, 'range', rangeOf('/secret/a', stored));
    expect(seen).toEqual(['dec secrets aesgcm c']);
  });
});
