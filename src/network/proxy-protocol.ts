/**
 * The PROXY protocol (versions 1 and 2, as specified by HAProxy's proxy-protocol.txt):
 * the header an L4 load balancer (HAProxy `send-proxy`/`send-proxy-v2`, AWS NLB, MetalLB
 * behind a proxy) writes at the start of a TCP connection to say which client it carries.
 * This module only parses; src/tls/front-door.ts decides when a header is expected
 * (only on connections from `server.proxyProtocol.trustedFrom`) and bounds the wait.
 *
 * The parser is fed the bytes received so far and answers "need more", "not a valid
 * header" or "done" with the number of bytes the header took; what follows is the
 * client's TLS ClientHello and is left for TLS. Reads are bounded: a v1 line is at most
 * 107 bytes by the specification, and a v2 header beyond MAX_V2_HEADER_BYTES is refused
 * (address blocks are 12 or 36 bytes; the rest are optional TLVs, which are skipped).
 */
import net from 'node:net';

/** Where a connection really comes from, as the load balancer says. */
export interface ProxiedSource {
  readonly address: string;
  readonly port: number;
}

export type ProxyHeaderParse =
  | { readonly state: 'incomplete' }
  | { readonly state: 'invalid'; readonly error: string }
  /** `source` is absent for LOCAL (health checks by the balancer itself) and UNKNOWN/UNSPEC: the socket's own peer then stands. */
  | { readonly state: 'done'; readonly consumed: number; readonly version: 1 | 2; readonly source?: ProxiedSource };

/** The 12-byte signature that opens every v2 header. */
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
const V1_PREFIX = Buffer.from('PROXY ', 'latin1');
/** The specification's bound on a v1 line, CRLF included. */
const MAX_V1_LINE_BYTES = 107;
/** The most of a v2 header etcdgate reads (16-byte fixed part included); a longer one is refused. */
export const MAX_V2_HEADER_BYTES = 16 + 1024;

/** Whether `data` (maybe shorter) is a prefix of `expected`, or starts with all of it. */
function startsLike(data: Buffer, expected: Buffer): boolean {
  const n = Math.min(data.length, expected.length);
  return data.subarray(0, n).equals(expected.subarray(0, n));
}

const DECIMAL_PORT = /^(?:0|[1-9]\d{0,4})$/u;

function port(text: string): number | undefined {
  if (!DECIMAL_PORT.test(text)) return undefined;
  const value = Number(text);
  return value <= 65535 ? value : undefined;
}

/** A v1 line: `PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n` or `PROXY UNKNOWN ...\r\n`. */
function parseV1(data: Buffer): ProxyHeaderParse {
  const end = data.indexOf('\r\n', 0, 'latin1');
  if (end < 0) return data.length >= MAX_V1_LINE_BYTES ? { state: 'invalid', error: 'PROXY v1 line longer than 107 bytes' } : { state: 'incomplete' };
  if (end + 2 > MAX_V1_LINE_BYTES) return { state: 'invalid', error: 'PROXY v1 line longer than 107 bytes' };
  const line = data.subarray(0, end).toString('latin1');
  const fields = line.split(' ');
  const consumed = end + 2;
  if (fields[1] === 'UNKNOWN') return { state: 'done', consumed, version: 1 };
  if (fields.length !== 6 || (fields[1] !== 'TCP4' && fields[1] !== 'TCP6')) return { state: 'invalid', error: 'malformed PROXY v1 line' };
  const [, family, source = '', , sourcePort = ''] = fields;
  const validAddress = family === 'TCP4' ? net.isIPv4(source) : net.isIPv6(source);
  const parsedPort = port(sourcePort);
  if (!validAddress || parsedPort === undefined || port(fields[5] ?? '') === undefined) return { state: 'invalid', error: 'malformed PROXY v1 addresses' };
  return { state: 'done', consumed, version: 1, source: { address: source, port: parsedPort } };
}

function formatIPv6(bytes: Buffer): string {
  // IPv4-mapped (::ffff:a.b.c.d) is reported as the IPv4 address it carries, as rules match it.
  if (bytes.subarray(0, 10).every((b) => b === 0) && bytes.readUInt16BE(10) === 0xffff) return [12, 13, 14, 15].map((i) => String(bytes[i] ?? 0)).join('.');
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i).toString(16));
  // The canonical (RFC 5952) text, as sockets report addresses.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

/** A v2 header: signature, version/command, family/transport, length, addresses, TLVs. */
function parseV2(data: Buffer): ProxyHeaderParse {
  if (data.length < 16) return { state: 'incomplete' };
  const versionCommand = data[12] ?? 0;
  if (versionCommand >> 4 !== 2) return { state: 'invalid', error: 'PROXY v2 header with an unknown version' };
  const command = versionCommand & 0x0f;
  if (command > 1) return { state: 'invalid', error: 'PROXY v2 header with an unknown command' };
  const familyTransport = data[13] ?? 0;
  const length = data.readUInt16BE(14);
  const total = 16 + length;
  if (total > MAX_V2_HEADER_BYTES) return { state: 'invalid', error: `PROXY v2 header longer than ${MAX_V2_HEADER_BYTES} bytes` };
  if (data.length < total) return { state: 'incomplete' };
  // LOCAL: the balancer's own connection (a health check); the socket's peer stands.
  if (command === 0) return { state: 'done', consumed: total, version: 2 };
  const family = familyTransport >> 4;
  const transport = familyTransport & 0x0f;
  if (transport === 2) return { state: 'invalid', error: 'PROXY v2 header for a datagram transport' };
  if (family === 1) {
    if (length < 12) return { state: 'invalid', error: 'PROXY v2 IPv4 address block too short' };
    const address = [16, 17, 18, 19].map((i) => String(data[i] ?? 0)).join('.');
    return { state: 'done', consumed: total, version: 2, source: { address, port: data.readUInt16BE(24) } };
  }
  if (family === 2) {
    if (length < 36) return { state: 'invalid', error: 'PROXY v2 IPv6 address block too short' };
    return { state: 'done', consumed: total, version: 2, source: { address: formatIPv6(data.subarray(16, 32)), port: data.readUInt16BE(48) } };
  }
  // UNSPEC or AF_UNIX: no IP address to report; the socket's peer (the balancer) stands.
  return { state: 'done', consumed: total, version: 2 };
}

/** Parses the PROXY header at the start of `data` (the bytes received so far). */
export function parseProxyHeader(data: Buffer): ProxyHeaderParse {
  if (data.length === 0) return { state: 'incomplete' };
  if (startsLike(data, V2_SIGNATURE)) return data.length < V2_SIGNATURE.length ? { state: 'incomplete' } : parseV2(data);
  if (startsLike(data, V1_PREFIX)) return data.length < V1_PREFIX.length ? { state: 'incomplete' } : parseV1(data);
  return { state: 'invalid', error: 'no PROXY protocol header' };
}
