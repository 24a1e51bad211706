/**
 * gRPC metadata as header fields (gRPC over HTTP/2 "Custom-Metadata"): which fields are
 * the protocol's own and which are the application's, and the `-bin` convention (binary
 * values travel base64-encoded, padded or not).
 */

/**
 * Fields of the gRPC and HTTP protocols, never application metadata. etcd behind TLS
 * serves gRPC through Go's HTTP server, which adds `trailer` and CORS headers
 * (`access-control-*`) to every answer: they describe the HTTP exchange, not the call.
 */
const PROTOCOL_FIELDS: ReadonlySet<string> = new Set([
  'content-type',
  'content-length',
  'grpc-status',
  'grpc-message',
  'grpc-status-details-bin',
  'grpc-encoding',
  'grpc-accept-encoding',
  'grpc-timeout',
  'te',
  'user-agent',
  'date',
  'trailer',
]);

/** Whether a field name belongs to the protocol rather than to the application. */
export function isProtocolField(name: string): boolean {
  return name.charCodeAt(0) === 0x3a || PROTOCOL_FIELDS.has(name) || name.startsWith('access-control-');
}

/** The application metadata of a header block (flat name, value list), in order. */
export function customMetadata(fields: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (!isProtocolField(name)) out.push(name, fields[i + 1] as string);
  }
  return out;
}

/** The entries of `fields` whose names are in `allowed`, in order (flat list). */
export function pickFields(fields: readonly string[], allowed: ReadonlySet<string>): string[] | undefined {
  let out: string[] | undefined;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    if (allowed.has(name)) (out ??= []).push(name, fields[i + 1] as string);
  }
  return out;
}

/** A `-bin` value's bytes (base64, with or without padding). */
export function binaryValue(value: string): Buffer {
  return Buffer.from(value, 'base64');
}
