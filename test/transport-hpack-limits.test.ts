/**
 * The HPACK decoder's limits and refusals, one hand-made block each: integer overflow and
 * over-long integers, index 0 and indexes past the tables, strings past the block, the three
 * Huffman padding/EOS errors, table size updates above the limit or after a field, entries
 * larger than the table, an HPACK bomb (one big entry referenced thousands of times), and
 * a list over the limit (tooLarge, with the table still in step for the next block). Then
 * the encoder's own choices: credentials never indexed, changing values not indexed,
 * oversized entries not indexed, a zero-size table honoured.
 */
import { describe, expect, it } from 'vitest';
import { HpackDecoder, HpackEncoder, HpackError, NEVER_INDEXED, encodeStateless } from '../src/transport/hpack/index.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');
const decoder = (maxTableSize = 4096, maxHeaderListSize = 65536): HpackDecoder => new HpackDecoder({ maxTableSize, maxHeaderListSize });

/** A literal with incremental indexing and a new name, both raw. */
function literalIndexed(name: string, value: string): Buffer {
  return Buffer.concat([Buffer.from([0x40]), rawString(name), rawString(value)]);
}

/** A raw string literal with its RFC 7541 5.1 length (7-bit prefix). */
function rawString(s: string): Buffer {
  const length: number[] = [];
  if (s.length < 127) length.push(s.length);
  else {
    length.push(127);
    let rest = s.length - 127;
    while (rest >= 128) {
      length.push((rest & 0x7f) | 0x80);
      rest = Math.floor(rest / 128);
    }
    length.push(rest);
  }
  return Buffer.concat([Buffer.from(length), Buffer.from(s, 'latin1')]);
}

describe('integers (RFC 7541 5.1)', () => {
  it('reads the RFC C.1 examples: 1337 with a 5-bit prefix as a size update', () => {
    const d = decoder();
    expect(d.decode(hex('3f 9a 0a')).fields).toEqual([]);
    expect(d.dynamicTableMaxSize).toBe(1337);
    // 10 with a 5-bit prefix fits in the prefix.
    d.decode(hex('2a'));
    expect(d.dynamicTableMaxSize).toBe(10);
  });

  it('accepts 2^31-1 and refuses 2^31 (here as a size update, then as an index)', () => {
    // 2^31-1 - 31 = 0x7fffffe0 in 7-bit groups: e0 ff ff ff 07. Above the table limit, so refused, but not as an overflow.
    expect(() => decoder(0x7fffffff).decode(hex('3f e0 ff ff ff 07'))).not.toThrow();
    expect(() => decoder(0x7fffffff).decode(hex('3f e1 ff ff ff 07'))).toThrow(/above 2\^31-1/);
    expect(() => decoder().decode(hex('ff 81 ff ff ff 07'))).toThrow(/above 2\^31-1/);
  });

  it('refuses more than 5 continuation octets, even if they only pad with zeros', () => {
    // A size update of 31 + 0: five zero continuation octets are still an integer, six are not.
    const d = decoder();
    d.decode(hex('3f 80 80 80 80 00'));
    expect(d.dynamicTableMaxSize).toBe(31);
    expect(() => decoder().decode(hex('3f 80 80 80 80 80 00'))).toThrow(/continuation/);
    expect(() => decoder().decode(hex('ff 80 80 80 80 80 80 01'))).toThrow(/continuation/);
  });

  it('refuses an integer cut off by the end of the block', () => {
    expect(() => decoder().decode(hex('ff'))).toThrow(HpackError);
    expect(() => decoder().decode(hex('ff 80'))).toThrow(/truncated/);
  });
});

describe('indexes', () => {
  it('refuses index 0', () => {
    expect(() => decoder().decode(hex('80'))).toThrow(/index 0/);
  });

  it('reads the last static entry and refuses the first dynamic one while the table is empty', () => {
    expect(decoder().decode(hex('bd')).fields).toEqual(['www-authenticate', '']);
    expect(() => decoder().decode(hex('be'))).toThrow(/beyond/);
    expect(() => decoder().decode(hex('7e 01 61'))).toThrow(/beyond/); // literal name from index 62
  });

  it('refuses an index past the entries the table holds, then reads the one it has', () => {
    const d = decoder();
    d.decode(literalIndexed('a', 'b'));
    expect(d.decode(hex('be')).fields).toEqual(['a', 'b']);
    expect(() => d.decode(hex('bf'))).toThrow(/beyond the 1-entry/);
  });
});

describe('string literals (RFC 7541 5.2)', () => {
  it('refuses a length past the end of the block', () => {
    expect(() => decoder().decode(hex('00 05 61 62 01 63'))).toThrow(/past the block/);
    expect(() => decoder().decode(hex('00 01 61'))).toThrow(/missing/); // the value is missing
    expect(() => decoder().decode(hex('40 7f ff ff ff 07'))).toThrow(/past the block/);
  });

  it("reads 'a' (00011) padded with three ones", () => {
    expect(decoder().decode(hex('00 81 1f 00')).fields).toEqual(['a', '']);
  });

  it('refuses padding longer than 7 bits', () => {
    expect(() => decoder().decode(hex('00 82 1f ff 00'))).toThrow(/padding/);
  });

  it('refuses padding that is not all ones', () => {
    expect(() => decoder().decode(hex('00 81 18 00'))).toThrow(/padding/);
  });

  it('refuses EOS (30 ones) inside a string', () => {
    expect(() => decoder().decode(hex('00 84 ff ff ff ff 00'))).toThrow(/EOS/);
  });
});

describe('dynamic table size updates (RFC 7541 4.2, 6.3)', () => {
  it('refuses an update above the advertised limit', () => {
    const d = decoder(4096);
    d.decode(hex('3f e1 1f')); // 31 + 97 + 31 * 128 = 4096: the limit itself is fine
    expect(d.dynamicTableMaxSize).toBe(4096);
    expect(() => decoder(4096).decode(hex('3f e2 1f'))).toThrow(/above the limit 4096/); // 4097
    expect(() => decoder(0).decode(hex('21'))).toThrow(/above the limit 0/);
  });

  it('accepts several updates at the start of a block, and the last one holds', () => {
    const d = decoder();
    d.decode(literalIndexed('k', 'v'));
    expect(d.decode(Buffer.concat([hex('20 3f e1 07'), hex('82')])).fields).toEqual([':method', 'GET']);
    expect(d.dynamicTableMaxSize).toBe(1024);
    expect(d.dynamicTableEntries()).toEqual([]); // the update to 0 emptied it
  });

  it('refuses an update after a field', () => {
    expect(() => decoder().decode(hex('82 20'))).toThrow(/after a field/);
  });

  it('evicts down to a smaller size', () => {
    const d = decoder();
    d.decode(Buffer.concat([literalIndexed('a', '1'), literalIndexed('b', '2'), literalIndexed('c', '3')]));
    expect(d.dynamicTableSize).toBe(3 * 34);
    d.decode(hex('3f 25')); // 68: room for two
    expect(d.dynamicTableEntries()).toEqual(['c', '3', 'b', '2']);
  });
});

describe('memory stays bounded', () => {
  it('an entry larger than the table empties it and is not kept; the block still lists it', () => {
    const d = decoder(256);
    d.decode(literalIndexed('small', 'x'));
    const big = 'v'.repeat(300);
    expect(d.decode(literalIndexed('big', big)).fields).toEqual(['big', big]);
    expect(d.dynamicTableEntries()).toEqual([]);
    expect(d.dynamicTableSize).toBe(0);
  });

  it('a block inserting many large entries never holds more than the table size', () => {
    const d = decoder(4096);
    const entries = Array.from({ length: 40 }, (_, i) => literalIndexed(`name-${i}`, 'x'.repeat(1000 + i)));
    d.decode(Buffer.concat(entries));
    expect(d.dynamicTableSize).toBeLessThanOrEqual(4096);
    // The newest three (1039, 1038, 1037 octets of value) are what fits.
    expect(d.dynamicTableEntries().filter((_, i) => i % 2 === 0)).toEqual(['name-39', 'name-38', 'name-37']);
  });

  it('an HPACK bomb (one 4 KB entry referenced 16 thousand times) stops at the list limit', () => {
    const d = decoder(4096, 65536);
    const value = 'x'.repeat(4000);
    const bomb = Buffer.concat([literalIndexed('b', value), Buffer.alloc(16 * 1024, 0xbe)]);
    const decoded = d.decode(bomb);
    expect(decoded.tooLarge).toBe(true);
    // 65536 / (1 + 4000 + 32) = 16 fields fit.
    expect(decoded.fields.length).toBe(2 * 16);
    expect(decoded.fields.every((s, i) => (i % 2 === 0 ? s === 'b' : s === value))).toBe(true);
  });

  it('a list over the limit: tooLarge, the fields before it, and the table in step for the next block', () => {
    const d = decoder(4096, 200);
    // Five 44-octet fields: four fit in 200; the fifth, and the indexed one after, do not.
    const block = Buffer.concat([
      literalIndexed('k1', 'aaaaaaaaaa'),
      literalIndexed('k2', 'bbbbbbbbbb'),
      literalIndexed('k3', 'cccccccccc'),
      literalIndexed('k4', 'dddddddddd'),
      literalIndexed('k5', 'eeeeeeeeee'),
      hex('00 02 6b 36 02 66 66'), // k6: ff without indexing, skipped but validated
      literalIndexed('k7', 'gggggggggg'),
    ]);
    const first = d.decode(block);
    expect(first.tooLarge).toBe(true);
    expect(first.fields).toEqual(['k1', 'aaaaaaaaaa', 'k2', 'bbbbbbbbbb', 'k3', 'cccccccccc', 'k4', 'dddddddddd']);
    // k7 and k5, inserted after the limit was passed, are in the table: index 62 and 63.
    expect(d.decode(hex('be bf')).fields).toEqual(['k7', 'gggggggggg', 'k5', 'eeeeeeeeee']);
  });

  it('past the limit a never-indexed literal is still validated', () => {
    const d = decoder(4096, 40);
    expect(() => d.decode(Buffer.concat([literalIndexed('k1', 'aaaaaaaaaa'), hex('10 01 61 81 18')]))).toThrow(/padding/);
  });
});

describe("the encoder's choices", () => {
  const fieldsOf = (blocks: Buffer[], d: HpackDecoder): string[][] => blocks.map((b) => d.decode(b).fields);

  it('never indexes credentials, and marks them never-indexed (0001) in dynamic and stateless blocks', () => {
    for (const name of NEVER_INDEXED) {
      const encoder = new HpackEncoder();
      const blocks = [encoder.encode([name, 'secret-1']), encoder.encode([name, 'secret-1'])];
      expect(encoder.dynamicTableEntries()).toEqual([]);
      for (const b of [...blocks, encodeStateless([name, 'secret-1'])]) expect((b[0] ?? 0) & 0xf0).toBe(0x10);
      expect(fieldsOf(blocks, decoder())).toEqual([[name, 'secret-1'], [name, 'secret-1']]);
    }
  });

  it('indexes a repeating field and sends it again as one octet', () => {
    const encoder = new HpackEncoder();
    encoder.encode([':path', '/etcdserverpb.KV/Range']);
    expect(encoder.encode([':path', '/etcdserverpb.KV/Range']).toString('hex')).toBe('be');
  });

  it('does not index values that change on every message (grpc-timeout)', () => {
    const encoder = new HpackEncoder();
    const d = decoder();
    expect(fieldsOf([encoder.encode(['grpc-timeout', '4999m']), encoder.encode(['grpc-timeout', '4998m'])], d)).toEqual([
      ['grpc-timeout', '4999m'],
      ['grpc-timeout', '4998m'],
    ]);
    expect(encoder.dynamicTableEntries()).toEqual([]);
    expect(d.dynamicTableEntries()).toEqual([]);
  });

  it('does not index an entry larger than half the table', () => {
    const encoder = new HpackEncoder(256);
    encoder.encode(['x-big', 'v'.repeat(100)]); // 5 + 100 + 32 = 137 > 128
    expect(encoder.dynamicTableEntries()).toEqual([]);
    encoder.encode(['x-small', 'v'.repeat(80)]); // 119
    expect(encoder.dynamicTableEntries()).toEqual(['x-small', 'v'.repeat(80)]);
  });

  it('with a zero-size table: announces 0 once, then indexes nothing', () => {
    const encoder = new HpackEncoder();
    const d = decoder();
    d.decode(encoder.encode(['custom-key', 'custom-value']));
    expect(d.dynamicTableEntries()).toEqual(['custom-key', 'custom-value']);
    encoder.setMaxTableSize(0);
    const block = encoder.encode(['custom-key', 'custom-value']);
    expect(block[0]).toBe(0x20); // size update to 0
    expect(block[1]).toBe(0x00); // literal without indexing, new name: the table no longer has it
    expect(d.decode(block).fields).toEqual(['custom-key', 'custom-value']);
    expect(d.dynamicTableMaxSize).toBe(0);
    const next = encoder.encode(['custom-key', 'custom-value']);
    expect(next[0]).toBe(0x00);
    expect(d.decode(next).fields).toEqual(['custom-key', 'custom-value']);
    expect(encoder.dynamicTableEntries()).toEqual([]);
  });

  it('takeTableSizeUpdate returns the pending update once, then nothing', () => {
    const encoder = new HpackEncoder();
    expect(encoder.takeTableSizeUpdate().length).toBe(0);
    encoder.setMaxTableSize(100);
    expect(encoder.takeTableSizeUpdate().toString('hex')).toBe('3f45'); // 31 + 69
    expect(encoder.takeTableSizeUpdate().length).toBe(0);
    expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('82');
  });

  it('uses at most 4096 octets whatever the peer allows, and announces nothing for it', () => {
    const encoder = new HpackEncoder(1 << 20);
    expect(encoder.encode([':method', 'GET']).toString('hex')).toBe('82');
  });

  it('refuses a list that is not name, value pairs', () => {
    expect(() => new HpackEncoder().encode(['lonely'])).toThrow(RangeError);
    expect(() => encodeStateless(['lonely'])).toThrow(RangeError);
  });
});
