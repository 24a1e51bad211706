/**
 * The Splice that encryption at rest rewrites messages with: its one-buffer output, and
 * its output as parts, must equal the message written field by field (WireWriter), nested splices included, and
 * every byte it was not told to change must stay as it was.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { WireReader } from '../src/etcd/wire.js';
import { WireWriter } from '../src/etcd/wire-writer.js';
import { Splice } from '../src/etcd/wire-splice.js';
import { decode, encode } from './support/etcd-messages.js';

/** A message of length-delimited fields; `replacements[i]` is field i's new bytes, null to drop it, undefined to keep it. */
const fields = fc.array(fc.record({ field: fc.integer({ min: 1, max: 2000 }), bytes: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 8 });

describe('Splice', () => {
  it('writes what WireWriter writes for the same fields, whatever is replaced, dropped or appended', () => {
    fc.assert(
      fc.property(fields, fc.array(fc.option(fc.oneof(fc.uint8Array({ maxLength: 300 }), fc.constant(null)), { nil: undefined })), fc.option(fc.uint8Array({ maxLength: 200 }), { nil: undefined }), (message, changes, appended) => {
        const source = new WireWriter();
        for (const f of message) source.bytes(f.field, Buffer.from(f.bytes), true);
        const bytes = source.finish();
        const expected = new WireWriter();
        const splice = new Splice(bytes);
        const r = new WireReader(bytes);
        let i = 0;
        while (r.next()) {
          const start = r.fieldStart;
          const field = r.field;
          const old = r.bytes();
          const change = changes[i++];
          if (change === undefined) {
            expected.bytes(field, old, true);
            continue;
          }
          splice.replace(start, r.offset, field, change === null ? null : Buffer.from(change));
          if (change !== null) expected.bytes(field, Buffer.from(change), true);
        }
        if (appended !== undefined) {
          splice.append(7, [Buffer.from(appended.subarray(0, 3)), Buffer.from(appended.subarray(3))]);
          expected.bytes(7, Buffer.from(appended), true);
        }
        const out = splice.finish(5);
        expect(out.length).toBe(5 + splice.length);
        expect(out.subarray(5)).toEqual(expected.finish());
        // The same bytes as parts, none empty, adding up to the length.
        const parts = splice.parts();
        expect(Buffer.concat(parts)).toEqual(out.subarray(5));
        expect(parts.every((part) => part.length > 0)).toBe(true);
      }),
    );
  });

  it('recomputes the length prefixes of every enclosing message when a nested value grows past a varint boundary', () => {
    const response = encode('etcdserverpb.RangeResponse', {
      header: { revision: 7 },
      kvs: [
        { key: Buffer.from('/a'), value: Buffer.from('short'), mod_revision: 3 },
        { key: Buffer.from('/b'), value: Buffer.from('kept'), mod_revision: 4 },
      ],
      count: 2,
    });
    const outer = new Splice(response);
    const r = new WireReader(response);
    while (r.next()) {
      if (r.field !== 2) continue;
      const start = r.fieldStart;
      const kv = r.bytes();
      const inner = new Splice(kv);
      const k = new WireReader(kv);
      let key = '';
      while (k.next()) {
        if (k.field === 1) key = k.bytes().toString();
        else if (k.field === 5 && key === '/a') {
          const valueStart = k.fieldStart;
          k.bytes();
          inner.replace(valueStart, k.offset, 5, Buffer.alloc(20_000, 0x61));
        }
      }
      if (inner.changed) outer.replace(start, r.offset, 2, inner);
    }
    expect(Buffer.concat(outer.parts())).toEqual(outer.finish());
    const decoded = decode('etcdserverpb.RangeResponse', outer.finish());
    const kvs = decoded['kvs'] as { key: Buffer; value: Buffer; mod_revision: unknown }[];
    expect(kvs.map((kv) => kv.key.toString())).toEqual(['/a', '/b']);
    expect(kvs[0]?.value.length).toBe(20_000);
    expect(kvs[1]?.value.toString()).toBe('kept');
    expect(String(decoded['count'])).toBe('2');
  });

  it('refuses edits given out of order instead of writing a wrong message', () => {
    const bytes = new WireWriter().bytes(1, 'one').bytes(2, 'two').finish();
    const splice = new Splice(bytes);
    splice.replace(5, 10, 2, Buffer.from('x'));
    expect(() => splice.replace(0, 5, 1, null)).toThrow(RangeError);
  });
});
