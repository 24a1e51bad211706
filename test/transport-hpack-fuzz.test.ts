/**
 * Property tests (fast-check) for the HPACK decoder and encoder:
 * - arbitrary octets, octets shaped like representations, and mutated valid blocks, fed
 *   block after block to one decoder, never throw anything but HpackError, never leave the
 *   dynamic table above its limit, never return a list above the list limit;
 * - encode -> decode is the identity over whole connection histories (table size changes,
 *   stateless and mixed blocks), with both dynamic tables equal after every block;
 * - a decoder with a small list limit stays in step with one without: its list is a prefix
 *   of the full one, tooLarge exactly when the full list is over the limit, same table;
 * - Huffman: decode(encode(s)) = s, and any octets that decode re-encode to themselves
 *   (the padding rules make the code canonical), within the 8/5 expansion bound.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ENTRY_OVERHEAD, HpackDecoder, HpackEncoder, HpackError, encodeStateless } from '../src/transport/hpack/index.js';
import type { DecodedBlock } from '../src/transport/hpack/index.js';
import { huffmanDecode, huffmanDecodedMax, huffmanEncode, huffmanLength } from '../src/transport/hpack/huffman.js';
import type { HistoryStep } from './support/hpack-arbitraries.js';
import { flat, history, octets } from './support/hpack-arbitraries.js';

const RUNS = 300;

/** RFC 9113 6.5.2 size of a flat list. */
function listSize(fields: readonly string[]): number {
  let size = 0;
  for (let i = 0; i < fields.length; i += 2) size += (fields[i] ?? '').length + (fields[i + 1] ?? '').length + ENTRY_OVERHEAD;
  return size;
}

/** Decodes; anything but HpackError fails the test. Returns undefined for HpackError. */
function decodeOrHpackError(decoder: HpackDecoder, block: Buffer): DecodedBlock | undefined {
  try {
    return decoder.decode(block);
  } catch (err) {
    if (err instanceof HpackError) return undefined;
    throw new Error(`decoder threw a non-HpackError for ${block.toString('hex')}: ${String(err)}`);
  }
}

/** The invariants that hold after any block, decoded or refused. */
function checkBounded(decoder: HpackDecoder, limits: { maxTableSize: number; maxHeaderListSize: number }, result: DecodedBlock | undefined): void {
  expect(decoder.dynamicTableSize).toBeLessThanOrEqual(limits.maxTableSize);
  expect(decoder.dynamicTableMaxSize).toBeLessThanOrEqual(limits.maxTableSize);
  expect(listSize(decoder.dynamicTableEntries())).toBe(decoder.dynamicTableSize);
  if (result !== undefined) expect(listSize(result.fields)).toBeLessThanOrEqual(limits.maxHeaderListSize);
}

const limitsArb = fc.record({
  maxTableSize: fc.constantFrom(0, 64, 256, 4096, 65536),
  maxHeaderListSize: fc.constantFrom(0, 100, 1024, 16384, 1 << 20),
});

/** Octets that look like representations: right first-octet patterns, plausible lengths, Huffman flags. */
const representation: fc.Arbitrary<readonly number[]> = fc.oneof(
  fc.integer({ min: 0, max: 127 }).map((i) => [0x80 | i]),
  fc.tuple(fc.integer({ min: 0, max: 63 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 12 })).map(([i, l, s]) => [0x40 | i, l, ...s]),
  fc.tuple(fc.integer({ min: 0, max: 31 }), fc.uint8Array({ maxLength: 5 })).map(([i, s]) => [0x20 | i, ...s]),
  fc.tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 12 })).map(([i, l, s]) => [i, l, ...s]),
  fc.constantFrom([0xff, 0xff, 0xff, 0xff, 0xff, 0x0f], [0x7f, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01], [0x40, 0x81, 0xff], [0x00, 0x84, 0xff, 0xff, 0xff, 0xff]),
);
const shapedBlock = fc.array(representation, { maxLength: 20 }).map((parts) => Buffer.from(parts.flat()));

describe('the decoder on hostile input', () => {
  it('arbitrary octets, block after block: HpackError or a bounded result, never anything else', () => {
    fc.assert(
      fc.property(limitsArb, fc.array(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), shapedBlock), { minLength: 1, maxLength: 8 }), (limits, blocks) => {
        const decoder = new HpackDecoder(limits);
        for (const block of blocks) checkBounded(decoder, limits, decodeOrHpackError(decoder, block));
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('mutated valid blocks: the blocks before the mutation decode exactly; the mutated one is refused or bounded', () => {
    const mutation = fc.record({
      at: fc.nat(),
      kind: fc.constantFrom('flip', 'set', 'insert', 'delete', 'truncate'),
      octet: fc.integer({ min: 0, max: 255 }),
      bit: fc.integer({ min: 0, max: 7 }),
    });
    fc.assert(
      fc.property(history, fc.nat(), mutation, limitsArb, (steps, which, m, limits) => {
        const encoder = new HpackEncoder(Math.min(limits.maxTableSize, 4096));
        const blocks = steps.map((step) => encoder.encode(flat(step.fields)));
        const target = which % blocks.length;
        const original = blocks[target] ?? Buffer.alloc(0);
        const at = original.length === 0 ? 0 : m.at % original.length;
        const mutated = Buffer.from(original);
        let block: Buffer;
        switch (m.kind) {
          case 'flip':
            if (mutated.length > 0) mutated[at] = (mutated[at] ?? 0) ^ (1 << m.bit);
            block = mutated;
            break;
          case 'set':
            if (mutated.length > 0) mutated[at] = m.octet;
            block = mutated;
            break;
          case 'insert':
            block = Buffer.concat([original.subarray(0, at), Buffer.from([m.octet]), original.subarray(at)]);
            break;
          case 'delete':
            block = Buffer.concat([original.subarray(0, at), original.subarray(at + 1)]);
            break;
          case 'truncate':
            block = original.subarray(0, at);
            break;
        }
        const decoder = new HpackDecoder({ maxTableSize: limits.maxTableSize, maxHeaderListSize: 1 << 24 });
        for (let i = 0; i < target; i++) expect(decoder.decode(blocks[i] ?? Buffer.alloc(0)).fields).toEqual(flat(steps[i]?.fields ?? []));
        const bounded = new HpackDecoder(limits);
        for (let i = 0; i < target; i++) bounded.decode(blocks[i] ?? Buffer.alloc(0));
        checkBounded(bounded, limits, decodeOrHpackError(bounded, block));
        // The rest of the history on the (possibly desynchronised) decoder: still only HpackError, still bounded.
        for (let i = target + 1; i < blocks.length; i++) checkBounded(bounded, limits, decodeOrHpackError(bounded, blocks[i] ?? Buffer.alloc(0)));
      }),
      { numRuns: RUNS },
    );
  });
});

/** Our encoder's block for one step, assembled as the step says. */
function block(encoder: HpackEncoder, step: HistoryStep): Buffer {
  const fields = flat(step.fields);
  const half = Math.floor(step.fields.length / 2) * 2;
  if (step.shape === 'dynamic') return encoder.encode(fields);
  if (step.shape === 'mixed') return Buffer.concat([encoder.encode(fields.slice(0, half)), encodeStateless(fields.slice(half))]);
  return Buffer.concat([encoder.takeTableSizeUpdate(), encodeStateless(fields.slice(0, half)), encodeStateless(fields.slice(half))]);
}

describe('round trip', () => {
  it('encode -> decode is the identity over connection histories, both tables equal after every block', () => {
    fc.assert(
      fc.property(history, (steps) => {
        const encoder = new HpackEncoder();
        const decoder = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 24 });
        for (const step of steps) {
          if (step.tableSize !== undefined) encoder.setMaxTableSize(step.tableSize);
          const decoded = decoder.decode(block(encoder, step));
          expect(decoded).toEqual({ fields: flat(step.fields), tooLarge: false });
          expect(decoder.dynamicTableEntries()).toEqual(encoder.dynamicTableEntries());
          expect(decoder.dynamicTableSize).toBe(encoder.dynamicTableSize);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('stateless blocks, concatenated, decode to the concatenated lists and leave the table empty', () => {
    fc.assert(
      fc.property(fc.array(history, { minLength: 1, maxLength: 4 }), (lists) => {
        const parts = lists.map((steps) => flat(steps.flatMap((s) => s.fields)));
        const decoder = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 24 });
        expect(decoder.decode(Buffer.concat(parts.map((p) => encodeStateless(p)))).fields).toEqual(parts.flat());
        expect(decoder.dynamicTableSize).toBe(0);
      }),
      { numRuns: RUNS },
    );
  });

  it('a small list limit: the list is a prefix of the full one, tooLarge exactly when over, the table in step', () => {
    fc.assert(
      fc.property(history, fc.integer({ min: 0, max: 3000 }), (steps, limit) => {
        const encoder = new HpackEncoder();
        const full = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 1 << 24 });
        const small = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: limit });
        for (const step of steps) {
          const b = encoder.encode(flat(step.fields));
          const whole = full.decode(b);
          const part = small.decode(b);
          expect(part.tooLarge).toBe(listSize(whole.fields) > limit);
          expect(whole.fields.slice(0, part.fields.length)).toEqual(part.fields);
          if (!part.tooLarge) expect(part.fields).toEqual(whole.fields);
          expect(listSize(part.fields)).toBeLessThanOrEqual(limit);
          expect(small.dynamicTableEntries()).toEqual(full.dynamicTableEntries());
        }
      }),
      { numRuns: RUNS },
    );
  });
});

describe('Huffman code', () => {
  it('decode(encode(s)) = s for any octets, in huffmanLength octets', () => {
    fc.assert(
      fc.property(octets(0, 300), (s) => {
        const encoded = Buffer.alloc(huffmanLength(s));
        expect(huffmanEncode(s, encoded, 0)).toBe(encoded.length);
        const out = Buffer.alloc(huffmanDecodedMax(encoded.length));
        const n = huffmanDecode(encoded, 0, encoded.length, out);
        expect(out.toString('latin1', 0, n)).toBe(s);
      }),
      { numRuns: RUNS * 3 },
    );
  });

  it('any octets either are refused with HpackError or are the canonical encoding of what they decode to', () => {
    let decodedSome = 0;
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 40 }), (bytes) => {
        const input = Buffer.from(bytes);
        const out = Buffer.alloc(huffmanDecodedMax(input.length));
        let n: number;
        try {
          n = huffmanDecode(input, 0, input.length, out);
        } catch (err) {
          expect(err).toBeInstanceOf(HpackError);
          return;
        }
        decodedSome++;
        const s = out.toString('latin1', 0, n);
        const again = Buffer.alloc(huffmanLength(s));
        huffmanEncode(s, again, 0);
        expect(again.toString('hex')).toBe(input.toString('hex'));
      }),
      { numRuns: RUNS * 3 },
    );
    expect(decodedSome).toBeGreaterThan(0);
  });
});
