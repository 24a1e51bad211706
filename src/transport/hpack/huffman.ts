/**
 * HPACK's Huffman code (RFC 7541 5.2 and Appendix B): length, encoding, and a table-driven
 * decoder, all built once at import from the code table below.
 *
 * Decoding runs a byte-at-a-time state machine: a state is an internal node of the code's
 * binary tree (the root means "at a symbol boundary"); `DECODE[state << 8 | byte]` gives the
 * state after those 8 bits, the symbols they completed (at most two: the shortest code is
 * 5 bits) and whether the walk hit EOS. The string is valid when it ends in a state whose
 * path from the root is at most 7 bits, all ones (RFC 7541 5.2: padding is the EOS prefix,
 * shorter than a byte). Decoding therefore costs one table load per input byte, allocates
 * nothing, and can never produce more than floor(8 * n / 5) octets from n input octets.
 */
import { HpackError } from './errors.js';

/**
 * The code table, symbols 0..256 in order (256 is EOS), as `bitLength:codeHex`, eight a
 * line. These are RFC 7541 Appendix B's codes.
 */
const CODE_TABLE = `
13:1ff8 23:7fffd8 28:fffffe2 28:fffffe3 28:fffffe4 28:fffffe5 28:fffffe6 28:fffffe7
28:fffffe8 24:ffffea 30:3ffffffc 28:fffffe9 28:fffffea 30:3ffffffd 28:fffffeb 28:fffffec
28:fffffed 28:fffffee 28:fffffef 28:ffffff0 28:ffffff1 28:ffffff2 30:3ffffffe 28:ffffff3
28:ffffff4 28:ffffff5 28:ffffff6 28:ffffff7 28:ffffff8 28:ffffff9 28:ffffffa 28:ffffffb
6:14 10:3f8 10:3f9 12:ffa 13:1ff9 6:15 8:f8 11:7fa
10:3fa 10:3fb 8:f9 11:7fb 8:fa 6:16 6:17 6:18
5:0 5:1 5:2 6:19 6:1a 6:1b 6:1c 6:1d
6:1e 6:1f 7:5c 8:fb 15:7ffc 6:20 12:ffb 10:3fc
13:1ffa 6:21 7:5d 7:5e 7:5f 7:60 7:61 7:62
7:63 7:64 7:65 7:66 7:67 7:68 7:69 7:6a
7:6b 7:6c 7:6d 7:6e 7:6f 7:70 7:71 7:72
8:fc 7:73 8:fd 13:1ffb 19:7fff0 13:1ffc 14:3ffc 6:22
15:7ffd 5:3 6:23 5:4 6:24 5:5 6:25 6:26
6:27 5:6 7:74 7:75 6:28 6:29 6:2a 5:7
6:2b 7:76 6:2c 5:8 5:9 6:2d 7:77 7:78
7:79 7:7a 7:7b 15:7ffe 11:7fc 14:3ffd 13:1ffd 28:ffffffc
20:fffe6 22:3fffd2 20:fffe7 20:fffe8 22:3fffd3 22:3fffd4 22:3fffd5 23:7fffd9
22:3fffd6 23:7fffda 23:7fffdb 23:7fffdc 23:7fffdd 23:7fffde 24:ffffeb 23:7fffdf
24:ffffec 24:ffffed 22:3fffd7 23:7fffe0 24:ffffee 23:7fffe1 23:7fffe2 23:7fffe3
23:7fffe4 21:1fffdc 22:3fffd8 23:7fffe5 22:3fffd9 23:7fffe6 23:7fffe7 24:ffffef
22:3fffda 21:1fffdd 20:fffe9 22:3fffdb 22:3fffdc 23:7fffe8 23:7fffe9 21:1fffde
23:7fffea 22:3fffdd 22:3fffde 24:fffff0 21:1fffdf 22:3fffdf 23:7fffeb 23:7fffec
21:1fffe0 21:1fffe1 22:3fffe0 21:1fffe2 23:7fffed 22:3fffe1 23:7fffee 23:7fffef
20:fffea 22:3fffe2 22:3fffe3 22:3fffe4 23:7ffff0 22:3fffe5 22:3fffe6 23:7ffff1
26:3ffffe0 26:3ffffe1 20:fffeb 19:7fff1 22:3fffe7 23:7ffff2 22:3fffe8 25:1ffffec
26:3ffffe2 26:3ffffe3 26:3ffffe4 27:7ffffde 27:7ffffdf 26:3ffffe5 24:fffff1 25:1ffffed
19:7fff2 21:1fffe3 26:3ffffe6 27:7ffffe0 27:7ffffe1 26:3ffffe7 27:7ffffe2 24:fffff2
21:1fffe4 21:1fffe5 26:3ffffe8 26:3ffffe9 28:ffffffd 27:7ffffe3 27:7ffffe4 27:7ffffe5
20:fffec 24:fffff3 20:fffed 21:1fffe6 22:3fffe9 21:1fffe7 21:1fffe8 23:7ffff3
22:3fffea 22:3fffeb 25:1ffffee 25:1ffffef 24:fffff4 24:fffff5 26:3ffffea 23:7ffff4
26:3ffffeb 27:7ffffe6 26:3ffffec 26:3ffffed 27:7ffffe7 27:7ffffe8 27:7ffffe9 27:7ffffea
27:7ffffeb 28:ffffffe 27:7ffffec 27:7ffffed 27:7ffffee 27:7ffffef 27:7fffff0 26:3ffffee
30:3fffffff`;

const SYMBOLS = 257;
const EOS = 256;

/** Code of each symbol, right-aligned. */
const CODES = new Uint32Array(SYMBOLS);
/** Bit length of each symbol's code (5..30). */
const LENGTHS = new Uint8Array(SYMBOLS);

{
  const tokens = CODE_TABLE.trim().split(/\s+/);
  if (tokens.length !== SYMBOLS) throw new Error('HPACK Huffman table: wrong symbol count');
  tokens.forEach((token, symbol) => {
    const [bits, hex] = token.split(':');
    LENGTHS[symbol] = Number(bits);
    CODES[symbol] = parseInt(hex ?? '', 16);
  });
}

// Decoding tables. The tree of a complete prefix code over 257 symbols has 256 internal
// nodes, so a state fits in 8 bits. Children are internal node ids (>= 0) or ~symbol (< 0).
const NODES = 256;
const UNSET = 0x7fffffff;
const CHILD = new Int32Array(NODES * 2).fill(UNSET);
/** Bits from the root to each internal node, and whether they are all ones. */
const DEPTH = new Uint8Array(NODES);
const ALL_ONES = new Uint8Array(NODES);

{
  let nodes = 1; // node 0 is the root
  ALL_ONES[0] = 1;
  for (let symbol = 0; symbol < SYMBOLS; symbol++) {
    const length = LENGTHS[symbol] ?? 0;
    const code = CODES[symbol] ?? 0;
    let node = 0;
    for (let bit = length - 1; bit >= 0; bit--) {
      const slot = node * 2 + ((code >>> bit) & 1);
      const child = CHILD[slot] ?? UNSET;
      if (bit === 0) {
        if (child !== UNSET) throw new Error('HPACK Huffman table: not a prefix code');
        CHILD[slot] = ~symbol;
      } else if (child === UNSET) {
        if (nodes === NODES) throw new Error('HPACK Huffman table: too many nodes');
        DEPTH[nodes] = length - bit;
        ALL_ONES[nodes] = ALL_ONES[node] === 1 && (code >>> bit) & 1 ? 1 : 0;
        CHILD[slot] = nodes;
        node = nodes++;
      } else if (child < 0) {
        throw new Error('HPACK Huffman table: not a prefix code');
      } else {
        node = child;
      }
    }
  }
  if (nodes !== NODES || CHILD.includes(UNSET)) throw new Error('HPACK Huffman table: code not complete');
}

// A DECODE entry: bits 0-7 next state, 8-15 first symbol, 16-23 second symbol,
// 24-25 how many symbols, 26 the next state may end the string, 27 EOS was decoded.
const SYMBOL_COUNT_SHIFT = 24;
const ACCEPT = 1 << 26;
const FAIL = 1 << 27;

const DECODE = new Uint32Array(NODES * 256);
{
  for (let state = 0; state < NODES; state++) {
    for (let byte = 0; byte < 256; byte++) {
      let node = state;
      let emitted = 0;
      let symbols = 0;
      let failed = false;
      for (let bit = 7; bit >= 0; bit--) {
        const child = CHILD[node * 2 + ((byte >>> bit) & 1)] ?? UNSET;
        if (child >= 0) {
          node = child;
          continue;
        }
        const symbol = ~child;
        if (symbol === EOS) {
          failed = true;
          break;
        }
        if (emitted === 2) throw new Error('HPACK Huffman table: three symbols in one octet');
        symbols |= symbol << (8 * emitted++);
        node = 0;
      }
      const accept = node === 0 || (ALL_ONES[node] === 1 && (DEPTH[node] ?? 8) <= 7);
      DECODE[(state << 8) | byte] = failed
        ? FAIL
        : node | (symbols << 8) | (emitted << SYMBOL_COUNT_SHIFT) | (accept ? ACCEPT : 0);
    }
  }
}

/** The most octets a Huffman string of `encodedLength` octets can decode to (every code is at least 5 bits). */
export function huffmanDecodedMax(encodedLength: number): number {
  return Math.floor((encodedLength * 8) / 5);
}

/**
 * Decodes the Huffman string `src[start, end)` into `dst` from offset 0 and returns the
 * number of octets written. `dst` must hold at least huffmanDecodedMax(end - start) octets.
 * Throws HpackError for EOS inside the string, padding longer than 7 bits, or padding
 * that is not all ones.
 */
export function huffmanDecode(src: Uint8Array, start: number, end: number, dst: Uint8Array): number {
  let state = 0;
  let entry = ACCEPT; // the empty string is valid
  let written = 0;
  for (let i = start; i < end; i++) {
    entry = DECODE[(state << 8) | (src[i] as number)] as number;
    if ((entry & FAIL) !== 0) throw new HpackError(`Huffman string contains EOS (octet ${i - start})`);
    const count = (entry >>> SYMBOL_COUNT_SHIFT) & 3;
    if (count !== 0) {
      dst[written++] = entry >>> 8;
      if (count === 2) dst[written++] = entry >>> 16;
    }
    state = entry & 0xff;
  }
  if ((entry & ACCEPT) === 0) throw new HpackError('Huffman string ends in invalid padding');
  return written;
}

/** Octets the Huffman encoding of the latin1 string `s` takes. */
export function huffmanLength(s: string): number {
  let bits = 0;
  for (let i = 0; i < s.length; i++) bits += LENGTHS[s.charCodeAt(i) & 0xff] as number;
  return (bits + 7) >>> 3;
}

/**
 * Writes the Huffman encoding of the latin1 string `s` into `out` at `pos`, padded with
 * ones, and returns the position after it. `out` must have huffmanLength(s) octets free.
 */
export function huffmanEncode(s: string, out: Uint8Array, pos: number): number {
  // `pending` holds `bits` (< 8 between symbols) not yet written, in its low bits. Each
  // push adds at most 24 bits so they never overflow 32; longer codes go in two pushes.
  let pending = 0;
  let bits = 0;
  for (let i = 0; i < s.length; i++) {
    const symbol = s.charCodeAt(i) & 0xff;
    const code = CODES[symbol] as number;
    const length = LENGTHS[symbol] as number;
    if (length > 24) {
      pending = (pending << (length - 16)) | (code >>> 16);
      bits += length - 16;
      while (bits >= 8) {
        bits -= 8;
        out[pos++] = pending >>> bits;
      }
      pending = (pending << 16) | (code & 0xffff);
      bits += 16;
    } else {
      pending = (pending << length) | code;
      bits += length;
    }
    while (bits >= 8) {
      bits -= 8;
      out[pos++] = pending >>> bits;
    }
  }
  if (bits > 0) out[pos++] = (pending << (8 - bits)) | (0xff >>> bits);
  return pos;
}
