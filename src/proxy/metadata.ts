/**
 * Which client metadata reaches etcd. Only an allowlist is forwarded: the headers that
 * change etcd's behaviour in ways clients rely on (`hasleader` makes etcd refuse watches
 * when it has no leader; `client-api-version`) and trace context. Credentials a client
 * sends (`token`, `authorization`) are dropped: the caller's identity comes from its
 * certificate, and the upstream identity is etcdgate's own.
 */
import type * as http2 from 'node:http2';
import * as grpc from '@grpc/grpc-js';

const FORWARDED_KEYS: readonly string[] = ['hasleader', 'client-api-version', 'traceparent', 'tracestate', 'grpc-trace-bin'];

/**
 * Shared by every call that forwards nothing (the common case). Safe to share: grpc-js
 * clones a call's metadata when the call starts and never writes to the caller's copy.
 */
const NOTHING_FORWARDED = new grpc.Metadata();

/** The allowlisted entries of a grpc-js call's metadata, for a grpc-js call to etcd (streams). */
export function upstreamMetadata(incoming: grpc.Metadata): grpc.Metadata {
  let outgoing: grpc.Metadata | undefined;
  for (const key of FORWARDED_KEYS) {
    const values = incoming.get(key);
    if (values.length === 0) continue;
    outgoing ??= new grpc.Metadata();
    for (const value of values) outgoing.add(key, value);
  }
  return outgoing ?? NOTHING_FORWARDED;
}

/** The allowlisted entries of a unary call's request headers, or undefined when there are none. */
export function forwardedHeaders(incoming: http2.IncomingHttpHeaders): http2.OutgoingHttpHeaders | undefined {
  let outgoing: http2.OutgoingHttpHeaders | undefined;
  for (const key of FORWARDED_KEYS) {
    const value = incoming[key];
    if (value === undefined) continue;
    outgoing ??= {};
    outgoing[key] = value;
  }
  return outgoing;
}

/** The W3C trace id of a grpc-js call's metadata. */
export function traceIdOf(incoming: grpc.Metadata): string | undefined {
  return traceIdOfHeader(incoming.get('traceparent')[0]);
}

/** The W3C trace id from a `traceparent` header ("00-<32 hex>-<16 hex>-<2 hex>"), if well-formed. */
export function traceIdOfHeader(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const match = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/u.exec(value);
  return match?.[1];
}
