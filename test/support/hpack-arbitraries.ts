/**
 * fast-check generators of header lists and connection histories for the HPACK tests.
 * They mix fields that repeat (gRPC request and response headers, so blocks hit the dynamic
 * table), random tokens, arbitrary octets in names and values, credentials (NEVER_INDEXED
 * names), values of thousands of octets (entries that evict, or exceed the table), and
 * table size changes between blocks.
 */
import fc from 'fast-check';
import { NEVER_INDEXED } from '../../src/transport/hpack/index.js';

/** One char per octet, any octet. */
const octet = fc.integer({ min: 0, max: 255 }).map((c) => String.fromCharCode(c));
const tokenChar = fc.constantFrom(...'abcdefghijklmnopqrstuvwxyz0123456789-_.');

/** A latin1 string of arbitrary octets. */
export const octets = (minLength: number, maxLength: number): fc.Arbitrary<string> =>
  fc.string({ unit: octet, minLength, maxLength });

/** Fields as grpc-go and etcd send them: the ones that repeat from call to call. */
export const COMMON_FIELDS: ReadonlyArray<readonly [string, string]> = [
  [':method', 'POST'],
  [':scheme', 'https'],
  [':path', '/etcdserverpb.KV/Range'],
  [':path', '/etcdserverpb.KV/Put'],
  [':path', '/etcdserverpb.Watch/Watch'],
  [':authority', '127.0.0.1:2379'],
  ['content-type', 'application/grpc'],
  ['user-agent', 'grpc-go/1.59.0'],
  ['te', 'trailers'],
  ['grpc-timeout', '4999867u'],
  [':status', '200'],
  ['grpc-status', '0'],
  ['grpc-message', ''],
  ['grpc-encoding', 'identity'],
  ['grpc-accept-encoding', 'identity,deflate,gzip'],
  ['token', 'UXoNbsbSAQObDnsw.42'],
  ['authorization', 'Bearer abc'],
];

const NAMES = [...new Set(COMMON_FIELDS.map(([name]) => name)), 'custom-key', 'x-b3-traceid', ...NEVER_INDEXED];
const VALUES = [...new Set(COMMON_FIELDS.map(([, value]) => value)), '', 'custom-value', '0'];

/** A header name: common, a random token, a credential, or (rarely) arbitrary octets. */
export const headerName: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...NAMES) },
  { weight: 3, arbitrary: fc.string({ unit: tokenChar, minLength: 1, maxLength: 24 }) },
  { weight: 1, arbitrary: fc.constantFrom(...NEVER_INDEXED) },
  { weight: 1, arbitrary: octets(0, 20) },
);

/** A header value: common, arbitrary octets, or long enough to evict most of a table. */
export const headerValue: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(...VALUES) },
  { weight: 4, arbitrary: octets(0, 64) },
  { weight: 1, arbitrary: fc.integer({ min: 200, max: 5000 }).map((n) => 'v'.repeat(n)) },
  { weight: 1, arbitrary: octets(200, 1200) },
);

/** One field with a sender-side "sensitive" wish (the peer may mark any field never-indexed). */
export const field: fc.Arbitrary<readonly [string, string, boolean]> = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...COMMON_FIELDS).map(([n, v]) => [n, v, false] as const) },
  { weight: 2, arbitrary: fc.tuple(headerName, headerValue, fc.integer({ min: 0, max: 9 }).map((n) => n < 3)) },
);

/** A table size a peer might set: from nothing to more than the default. */
export const tableSize: fc.Arbitrary<number> = fc.constantFrom(0, 32, 100, 256, 1024, 4096, 8192);

/** One block of a connection: its fields, and maybe a table size change before it. */
export interface HistoryStep {
  readonly fields: ReadonlyArray<readonly [string, string, boolean]>;
  readonly tableSize: number | undefined;
  readonly huffman: boolean;
  /** How a block is assembled by our encoder: encode(), or stateless parts, or both. */
  readonly shape: 'dynamic' | 'stateless' | 'mixed';
}

/** A connection's history: several blocks in order. */
export const history: fc.Arbitrary<HistoryStep[]> = fc.array(
  fc.record({
    fields: fc.array(field, { maxLength: 16 }),
    tableSize: fc.option(tableSize, { nil: undefined, freq: 4 }),
    huffman: fc.boolean(),
    shape: fc.constantFrom('dynamic', 'dynamic', 'dynamic', 'stateless', 'mixed'),
  }),
  { minLength: 1, maxLength: 12 },
);

/** name, value, name, value... of a step's fields. */
export function flat(fields: ReadonlyArray<readonly [string, string, boolean]>): string[] {
  return fields.flatMap(([name, value]) => [name, value]);
}
