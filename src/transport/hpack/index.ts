/**
 * HPACK (RFC 7541), the header compression of HTTP/2, as a pure module: it knows nothing of
 * sockets, frames or etcd. One HpackDecoder and one HpackEncoder per connection (each keeps
 * that direction's dynamic table); encodeStateless for blocks precomputed once and sent on
 * any connection. Every malformed block throws HpackError (HTTP/2 COMPRESSION_ERROR).
 */
export { HpackError } from './errors.js';
export { HpackDecoder } from './decoder.js';
export type { DecodeLimits, DecodedBlock } from './decoder.js';
export { DEFAULT_TABLE_SIZE, HpackEncoder, NEVER_INDEXED, UNINDEXED_NAMES, encodeStateless } from './encoder.js';
export { ENTRY_OVERHEAD } from './static-table.js';
