/**
 * Holds the HPACK decoder and encoder to RFC 7541 Appendix C, byte for byte: C.2 (single
 * representations), C.3/C.4 (three requests on one connection, raw and Huffman), C.5/C.6
 * (three responses with a 256-octet table, so entries are evicted). For each block the
 * decoded list, the dynamic table (newest first) and its size must match the RFC. The
 * encoder must reproduce the RFC's blocks wherever the RFC makes the same choices as ours,
 * and differ exactly where ours are documented to differ (ties go raw; set-cookie is
 * never indexed).
 */
import { describe, expect, it } from 'vitest';
import { HpackDecoder, HpackEncoder } from '../src/transport/hpack/index.js';

const hex = (h: string): Buffer => Buffer.from(h.replace(/\s+/g, ''), 'hex');

interface Step {
  readonly block: string;
  readonly fields: string[];
  /** Dynamic table after the block, newest first, flat. */
  readonly table: string[];
  readonly size: number;
}

const DATE1 = 'Mon, 21 Oct 2013 20:13:21 GMT';
const DATE2 = 'Mon, 21 Oct 2013 20:13:22 GMT';
const COOKIE = 'foo=ASDJKHQKBZXOQWEOPIUAXQWEOIU; max-age=3600; version=1';
const REQUEST_FIELDS = [
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com'],
  [':method', 'GET', ':scheme', 'http', ':path', '/', ':authority', 'www.example.com', 'cache-control', 'no-cache'],
  [':method', 'GET', ':scheme', 'https', ':path', '/index.html', ':authority', 'www.example.com', 'custom-key', 'custom-value'],
] as const;
const REQUEST_TABLES = [
  [':authority', 'www.example.com'],
  ['cache-control', 'no-cache', ':authority', 'www.example.com'],
  ['custom-key', 'custom-value', 'cache-control', 'no-cache', ':authority', 'www.example.com'],
] as const;
const RESPONSE_FIELDS = [
  [':status', '302', 'cache-control', 'private', 'date', DATE1, 'location', 'https://www.example.com'],
  [':status', '307', 'cache-control', 'private', 'date', DATE1, 'location', 'https://www.example.com'],
  [':status', '200', 'cache-control', 'private', 'date', DATE2, 'location', 'https://www.example.com', 'content-encoding', 'gzip', 'set-cookie', COOKIE],
] as const;
const RESPONSE_TABLES = [
  ['location', 'https://www.example.com', 'date', DATE1, 'cache-control', 'private', ':status', '302'],
  [':status', '307', 'location', 'https://www.example.com', 'date', DATE1, 'cache-control', 'private'],
  ['set-cookie', COOKIE, 'content-encoding', 'gzip', 'date', DATE2],
] as const;
const REQUEST_SIZES = [57, 110, 164];
const RESPONSE_SIZES = [222, 222, 215];

const steps = (blocks: string[], fields: readonly (readonly string[])[], tables: readonly (readonly string[])[], sizes: number[]): Step[] =>
  blocks.map((block, i) => ({ block, fields: [...(fields[i] ?? [])], table: [...(tables[i] ?? [])], size: sizes[i] ?? -1 }));

const C3 = steps(
  [
    '8286 8441 0f77 7777 2e65 7861 6d70 6c65 2e63 6f6d',
    '8286 84be 5808 6e6f 2d63 6163 6865',
    '8287 85bf 400a 6375 7374 6f6d 2d6b 6579 0c63 7573 746f 6d2d 7661 6c75 65',
  ],
  REQUEST_FIELDS,
  REQUEST_TABLES,
  REQUEST_SIZES,
);
const C4 = steps(
  [
    '8286 8441 8cf1 e3c2 e5f2 3a6b a0ab 90f4 ff',
    '8286 84be 5886 a8eb 1064 9cbf',
    '8287 85bf 4088 25a8 49e9 5ba9 7d7f 8925 a849 e95b b8e8 b4bf',
  ],
  REQUEST_FIELDS,
  REQUEST_TABLES,
  REQUEST_SIZES,
);
const C5 = steps(
  [
    `4803 3330 3258 0770 7269 7661 7465 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133
     2032 303a 3133 3a32 3120 474d 546e 1768 7474 7073 3a2f 2f77 7777 2e65 7861 6d70
     6c65 2e63 6f6d`,
    '4803 3330 37c1 c0bf',
    `88c1 611d 4d6f 6e2c 2032 3120 4f63 7420 3230 3133 2032 303a 3133 3a32 3220 474d
     54c0 5a04 677a 6970 7738 666f 6f3d 4153 444a 4b48 514b 425a 584f 5157 454f 5049
     5541 5851 5745 4f49 553b 206d 6178 2d61 6765 3d33 3630 303b 2076 6572 7369 6f6e
     3d31`,
  ],
  RESPONSE_FIELDS,
  RESPONSE_TABLES,
  RESPONSE_SIZES,
);
const C6 = steps(
  [
    `4882 6402 5885 aec3 771a 4b61 96d0 7abe 9410 54d4 44a8 2005 9504 0b81 66e0 82a6
     2d1b ff6e 919d 29ad 1718 63c7 8f0b 97c8 e9ae 82ae 43d3`,
    '4883 640e ffc1 c0bf',
    `88c1 6196 d07a be94 1054 d444 a820 0595 040b 8166 e084 a62d 1bff c05a 839b d9ab
     77ad 94e7 821d d7f2 e6c7 b335 dfdf cd5b 3960 d5af 2708 7f36 72c1 ab27 0fb5 291f
     9587 3160 65c0 03ed 4ee5 b106 3d50 07`,
  ],
  RESPONSE_FIELDS,
  RESPONSE_TABLES,
  RESPONSE_SIZES,
);

function decodeSeries(maxTableSize: number, series: Step[]): void {
  const decoder = new HpackDecoder({ maxTableSize, maxHeaderListSize: 65536 });
  series.forEach((step, i) => {
    const decoded = decoder.decode(hex(step.block));
    expect(decoded.tooLarge, `block ${i + 1}`).toBe(false);
    expect(decoded.fields, `block ${i + 1}`).toEqual(step.fields);
    expect(decoder.dynamicTableEntries(), `table after block ${i + 1}`).toEqual(step.table);
    expect(decoder.dynamicTableSize, `table size after block ${i + 1}`).toBe(step.size);
  });
}

describe('RFC 7541 C.2: single representations decode as the RFC says', () => {
  const cases: Array<[string, string, string[], string[], number]> = [
    ['C.2.1 literal with indexing', '400a 6375 7374 6f6d 2d6b 6579 0d63 7573 746f 6d2d 6865 6164 6572', ['custom-key', 'custom-header'], ['custom-key', 'custom-header'], 55],
    ['C.2.2 literal without indexing', '040c 2f73 616d 706c 652f 7061 7468', [':path', '/sample/path'], [], 0],
    ['C.2.3 literal never indexed', '1008 7061 7373 776f 7264 0673 6563 7265 74', ['password', 'secret'], [], 0],
    ['C.2.4 indexed', '82', [':method', 'GET'], [], 0],
  ];
  for (const [what, block, fields, table, size] of cases) {
    it(what, () => {
      const decoder = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 65536 });
      expect(decoder.decode(hex(block))).toEqual({ fields, tooLarge: false });
      expect(decoder.dynamicTableEntries()).toEqual(table);
      expect(decoder.dynamicTableSize).toBe(size);
    });
  }
});

describe('RFC 7541 C.3-C.6: header block series on one connection', () => {
  it('C.3 requests without Huffman coding', () => decodeSeries(4096, C3));
  it('C.4 requests with Huffman coding', () => decodeSeries(4096, C4));
  it('C.5 responses without Huffman coding, 256-octet table with evictions', () => decodeSeries(256, C5));
  it('C.6 responses with Huffman coding, 256-octet table with evictions', () => decodeSeries(256, C6));
});

describe('the encoder reproduces the RFC where its choices are the same', () => {
  it('C.4: the three requests, byte for byte, with the same table', () => {
    const encoder = new HpackEncoder();
    C4.forEach((step, i) => {
      expect(encoder.encode(step.fields).toString('hex'), `block ${i + 1}`).toBe(hex(step.block).toString('hex'));
      expect(encoder.dynamicTableEntries()).toEqual(step.table);
      expect(encoder.dynamicTableSize).toBe(step.size);
    });
  });

  it('C.6: the responses, after announcing the 256-octet table; a Huffman tie goes raw; set-cookie is never indexed', () => {
    const encoder = new HpackEncoder(256);
    const [first, second, third] = [C6[0], C6[1], C6[2]] as [Step, Step, Step];

    // The peer's decoder starts at 4096 (RFC 9113 6.5.2), so the first block announces 256:
    // 001 11111 then 256 - 31 = 225 as 0xe1 0x01.
    expect(encoder.encode(first.fields).toString('hex')).toBe('3fe101' + hex(first.block).toString('hex'));
    expect(encoder.dynamicTableEntries()).toEqual(first.table);

    // "307" is 3 octets raw and 3 Huffman-coded: ours goes raw, which is C.5.2's block.
    expect(encoder.encode(second.fields).toString('hex')).toBe(hex(C5[1]?.block ?? '').toString('hex'));
    expect(encoder.dynamicTableEntries()).toEqual(second.table);

    // Up to set-cookie the same; then 0001 1111 + (55 - 15) = never indexed, static name 55,
    // where the RFC indexes it (0x77); the value literal is the same.
    const rfc = hex(third.block).toString('hex');
    const cookieAt = rfc.indexOf('77ad94e7');
    expect(cookieAt).toBeGreaterThan(0);
    expect(encoder.encode(third.fields).toString('hex')).toBe(rfc.slice(0, cookieAt) + '1f28' + rfc.slice(cookieAt + 2));
    // Without the cookie's 98 octets fewer entries are evicted than in the RFC.
    expect(encoder.dynamicTableEntries()).toEqual(['content-encoding', 'gzip', 'date', DATE2, ':status', '307', 'location', 'https://www.example.com']);
    expect(encoder.dynamicTableSize).toBe(52 + 65 + 42 + 63);
  });

  it('the C.6 blocks our encoder wrote decode back to the RFC lists', () => {
    const encoder = new HpackEncoder(256);
    const decoder = new HpackDecoder({ maxTableSize: 4096, maxHeaderListSize: 65536 });
    for (const step of C6) {
      expect(decoder.decode(encoder.encode(step.fields)).fields).toEqual(step.fields);
      expect(decoder.dynamicTableEntries()).toEqual(encoder.dynamicTableEntries());
    }
    expect(decoder.dynamicTableMaxSize).toBe(256);
  });
});
