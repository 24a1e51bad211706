/**
 * Parser for the optional `gateway` section: etcd's JSON/HTTP gateway on the client
 * listener (src/gateway). On by default, as etcd's own gateway is
 * (--enable-grpc-gateway). The timeouts and the header bound are the HTTP/1.1 limits a
 * client reached over TCP must not be able to outlast; the body bound is
 * server.maxRecvBytes, shared with gRPC.
 */
import type { GatewayConfig } from './types.js';
import type { Reader } from './read.js';
import { MAX_TIMER_MS, at, describe, isAbsent } from './read.js';

const GATEWAY_KEYS = ['enabled', 'headersTimeoutMs', 'bodyTimeoutMs', 'idleTimeoutMs', 'maxHeaderBytes'];

/** The defaults, also what an absent section means. */
export const DEFAULT_GATEWAY: GatewayConfig = {
  enabled: true,
  headersTimeoutMs: 10_000,
  bodyTimeoutMs: 30_000,
  idleTimeoutMs: 120_000,
  maxHeaderBytes: 16_384,
};

/** Reads the optional `gateway` section. */
export function readGateway(reader: Reader, value: unknown): GatewayConfig {
  const raw = reader.optionalMapping(value, 'gateway', GATEWAY_KEYS);
  const d = DEFAULT_GATEWAY;
  const ms = (key: 'headersTimeoutMs' | 'bodyTimeoutMs' | 'idleTimeoutMs'): number =>
    reader.integer(raw[key], at('gateway', key), { min: 1, max: MAX_TIMER_MS, fallback: d[key] });
  let enabled = d.enabled;
  if (!isAbsent(raw['enabled'])) {
    if (typeof raw['enabled'] === 'boolean') enabled = raw['enabled'];
    else reader.report(at('gateway', 'enabled'), `must be true or false, got ${describe(raw['enabled'])}`);
  }
  return {
    enabled,
    headersTimeoutMs: ms('headersTimeoutMs'),
    bodyTimeoutMs: ms('bodyTimeoutMs'),
    idleTimeoutMs: ms('idleTimeoutMs'),
    // Node's HTTP parser needs room for a request line and a few headers.
    maxHeaderBytes: reader.integer(raw['maxHeaderBytes'], at('gateway', 'maxHeaderBytes'), { min: 1024, max: 1_048_576, fallback: d.maxHeaderBytes }),
  };
}
