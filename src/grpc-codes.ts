/**
 * gRPC status code names, shared by the metrics labels and the audit records so both
 * name a code the same way etcd clients see it.
 */

const GRPC_CODE_NAMES: readonly string[] = [
  'OK',
  'CANCELLED',
  'UNKNOWN',
  'INVALID_ARGUMENT',
  'DEADLINE_EXCEEDED',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'RESOURCE_EXHAUSTED',
  'FAILED_PRECONDITION',
  'ABORTED',
  'OUT_OF_RANGE',
  'UNIMPLEMENTED',
  'INTERNAL',
  'UNAVAILABLE',
  'DATA_LOSS',
  'UNAUTHENTICATED',
];

/** The name of a gRPC status code, e.g. 7 -> "PERMISSION_DENIED"; "UNKNOWN" outside the table, so labels stay bounded. */
export function grpcCodeName(code: number): string {
  return GRPC_CODE_NAMES[code] ?? 'UNKNOWN';
}
