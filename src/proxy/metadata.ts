/**
 * Which client metadata reaches etcd. Only an allowlist is forwarded: the headers that
 * change etcd's behaviour in ways clients rely on (`hasleader` makes etcd refuse watches
 * when it has no leader; `client-api-version`) and trace context. Credentials a client
 * sends (`token`, `authorization`) are dropped: the caller's identity comes from its
 * certificate, and the upstream identity is etcdgate's own.
 */
import * as grpc from '@grpc/grpc-js';

const FORWARDED_KEYS: readonly string[] = ['hasleader', 'client-api-version', 'traceparent', 'tracestate', 'grpc-trace-bin'];

/**
 * Shared by every call that forwards nothing (the common case). Safe to share: grpc-js
 * clones a call's metadata when the call starts and never writes to the caller's copy.
 */
const NOTHING_FORWARDED = new grpc.Metadata();

/** The allowlisted entries of a client's metadata, or undefined when there are none. */
export function forwardedMetadata(incoming: grpc.Metadata): grpc.Metadata | undefined {
  let outgoing: grpc.Metadata | undefined;
  for (const key of FORWARDED_KEYS) {
    const values = incoming.get(key);
    if (values.length === 0) continue;
    outgoing ??= new grpc.Metadata();
    for (const value of values) outgoing.add(key, value);
  }
  return outgoing;
}

/** Copies the allowlisted entries of a client's metadata into a Metadata for a grpc-js call to etcd. */
export function upstreamMetadata(incoming: grpc.Metadata): grpc.Metadata {
  return forwardedMetadata(incoming) ?? NOTHING_FORWARDED;
}

/** The W3C trace id from a `traceparent` header ("00-<32 hex>-<16 hex>-<2 hex>"), if well-formed. */
export function traceIdOf(incoming: grpc.Metadata): string | undefined {
  const value = incoming.get('traceparent')[0];
  if (typeof value !== 'string') return undefined;
  const match = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/u.exec(value);
  return match?.[1];
}
