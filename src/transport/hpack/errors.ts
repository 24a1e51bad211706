/**
 * The one error HPACK raises. Any header block the decoder cannot read exactly as RFC 7541
 * defines it throws HpackError; HTTP/2 answers it with a connection error of type
 * COMPRESSION_ERROR (RFC 9113 4.3), because after a bad block the two dynamic tables can no
 * longer be assumed to agree. Messages name the offending position and rule, never a header
 * name or value (they may be credentials).
 */

/** A malformed header block: HTTP/2 COMPRESSION_ERROR. */
export class HpackError extends Error {
  override readonly name = 'HpackError';
}
