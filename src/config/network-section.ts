/**
 * Parsers for the network-isolation keys of the `server` section: `allowedSources`
 * (CIDRs a client connection may come from, checked when it is accepted) and
 * `proxyProtocol` (load balancers whose PROXY protocol header is required and believed).
 * CIDRs are validated here with the same parser the listener compiles them with
 * (src/network/cidr.ts), each bad entry reported at its own index.
 */
import { compileCidrList } from '../network/cidr.js';
import type { ProxyProtocolConfig } from './types.js';
import type { Reader } from './read.js';
import { at, index, isAbsent } from './read.js';

const PROXY_PROTOCOL_KEYS = ['trustedFrom', 'headerTimeoutMs'];

/** A PROXY header is a few dozen bytes sent at once: a balancer that takes longer is broken or not one. */
const DEFAULT_HEADER_TIMEOUT_MS = 3_000;

/** A non-empty list of CIDR strings, each validated; returns the canonical texts of the good ones. */
export function readCidrList(reader: Reader, value: unknown, fieldPath: string): string[] {
  if (!Array.isArray(value) || value.length === 0) {
    reader.report(fieldPath, 'must be a non-empty list of CIDRs (e.g. [10.0.0.0/8, "2001:db8::/32"])');
    return [];
  }
  const entries: { text: string; at: number }[] = [];
  value.forEach((entry: unknown, i) => {
    if (typeof entry !== 'string') reader.report(index(fieldPath, i), 'must be a CIDR string');
    else entries.push({ text: entry, at: i });
  });
  const texts = entries.map((e) => e.text);
  const matcher = compileCidrList(texts, (i, message) => reader.report(index(fieldPath, entries[i]?.at ?? i), message));
  return [...matcher.networks];
}

/** `server.allowedSources`: absent means every source. */
export function readAllowedSources(reader: Reader, value: unknown, fieldPath: string): readonly string[] | undefined {
  return isAbsent(value) ? undefined : readCidrList(reader, value, fieldPath);
}

/** `server.proxyProtocol`: absent means no PROXY protocol (every header is refused as not TLS). */
export function readProxyProtocol(reader: Reader, value: unknown, fieldPath: string): ProxyProtocolConfig | undefined {
  if (isAbsent(value)) return undefined;
  const raw = reader.mapping(value, fieldPath, PROXY_PROTOCOL_KEYS);
  return {
    trustedFrom: isAbsent(raw['trustedFrom']) ? (reader.report(at(fieldPath, 'trustedFrom'), 'is required'), []) : readCidrList(reader, raw['trustedFrom'], at(fieldPath, 'trustedFrom')),
    headerTimeoutMs: reader.integer(raw['headerTimeoutMs'], at(fieldPath, 'headerTimeoutMs'), { min: 10, max: 60_000, fallback: DEFAULT_HEADER_TIMEOUT_MS }),
  };
}
