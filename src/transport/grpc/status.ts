/**
 * gRPC status codes and the encoding of `grpc-message` (gRPC over HTTP/2: the message is
 * UTF-8, percent-encoded outside printable ASCII and '%'). Numbers and names are gRPC's.
 */

/** gRPC status codes, by name. */
export const Code = Object.freeze({
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  PERMISSION_DENIED: 7,
  RESOURCE_EXHAUSTED: 8,
  FAILED_PRECONDITION: 9,
  ABORTED: 10,
  OUT_OF_RANGE: 11,
  UNIMPLEMENTED: 12,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  DATA_LOSS: 15,
  UNAUTHENTICATED: 16,
});

const NAMES: readonly string[] = Object.keys(Code);

/** The name of a status code, e.g. 7 -> "PERMISSION_DENIED"; "UNKNOWN" outside the table, so labels stay bounded. */
export function codeName(code: number): string {
  return NAMES[code] ?? 'UNKNOWN';
}

/** A call's outcome: code, message, and trailing metadata (flat name, value list) when there is any. */
export interface Status {
  readonly code: number;
  readonly details: string;
  readonly metadata?: readonly string[] | undefined;
}

/** Printable ASCII but '%': what grpc-message may carry unencoded. */
const PLAIN = /^[\x20-\x24\x26-\x7e]*$/u;

/** grpc-message on the wire: UTF-8, with every byte outside printable ASCII, and '%', percent-encoded. */
export function encodeGrpcMessage(details: string): string {
  if (PLAIN.test(details)) return details;
  let encoded = '';
  for (const byte of Buffer.from(details, 'utf8')) {
    encoded += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

/**
 * grpc-message as received (a latin1 string of the header's octets) back to text. A
 * malformed escape is kept as it is, as gRPC's implementations do, rather than failing the call.
 */
export function decodeGrpcMessage(raw: string): string {
  if (!raw.includes('%')) return raw;
  const bytes: number[] = [];
  for (let i = 0; i < raw.length; i += 1) {
    const c = raw.charCodeAt(i);
    if (c === 0x25 && i + 2 < raw.length && /^[0-9A-Fa-f]{2}$/u.test(raw.slice(i + 1, i + 3))) {
      bytes.push(Number.parseInt(raw.slice(i + 1, i + 3), 16));
      i += 2;
    } else bytes.push(c & 0xff);
  }
  return Buffer.from(bytes).toString('utf8');
}
