/**
 * Which client metadata reaches etcd. Only an allowlist is forwarded: the headers that
 * change etcd's behaviour in ways clients rely on (`hasleader` makes etcd refuse watches
 * when it has no leader; `client-api-version`) and trace context. Credentials a client
 * sends (`token`, `authorization`) are dropped: the caller's identity comes from its
 * certificate, and the upstream identity is etcdgate's own.
 */
import type { RpcCall } from './call.js';

const FORWARDED: readonly string[] = ['hasleader', 'client-api-version', 'traceparent', 'tracestate', 'grpc-trace-bin'];

/** The allowlisted request metadata of a call (flat name, value list), or undefined when there is none. */
export function forwardedMetadata(call: Pick<RpcCall, 'header'>): string[] | undefined {
  let out: string[] | undefined;
  for (const name of FORWARDED) {
    const value = call.header(name);
    if (value !== undefined) (out ??= []).push(name, value);
  }
  return out;
}

/** The W3C trace id from a `traceparent` header ("00-<32 hex>-<16 hex>-<2 hex>"), if well-formed. */
export function traceIdOf(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const match = /^[\da-f]{2}-([\da-f]{32})-[\da-f]{16}-[\da-f]{2}$/u.exec(value);
  return match?.[1];
}
