/**
 * What happens to a client's TCP connection before TLS: the checks that need no
 * cryptography and must not cost any, in order.
 *
 * 1. The peer's address and port are taken the moment the connection is accepted (a
 *    socket closed by its peer no longer knows them, and every refusal record must say
 *    who).
 * 2. From an address in `server.proxyProtocol.trustedFrom`, a PROXY protocol v1 or v2
 *    header is required, read with a bound on its size and a deadline; the client it
 *    names is the connection's source from then on. From any other address a PROXY
 *    header is not honoured (it is not TLS, so the connection is refused as `no_tls`):
 *    a client cannot claim another address.
 * 3. The source (the real client) must be in `server.allowedSources`, when that is set.
 * 4. The first byte must open a TLS handshake record (0x16). A connection that sends
 *    nothing before the deadline, closes without a byte, or sends something else (a
 *    plain HTTP request, a port scanner's probe) is refused as `no_tls`, without
 *    involving OpenSSL.
 *
 * The bytes read are put back (socket.unshift) and the socket is handed on to TLS
 * untouched otherwise. The socket must have been accepted paused (net.Server's
 * pauseOnConnect), so no byte is read before these checks run.
 */
import type * as net from 'node:net';
import type { SourceMatcher } from '../network/cidr.js';
import { normalizeAddress } from '../network/cidr.js';
import { parseProxyHeader } from '../network/proxy-protocol.js';

/** The first byte of a TLS record carrying a handshake message (RFC 8446 §5.1, ContentType handshake). */
const TLS_HANDSHAKE_RECORD = 0x16;

/** The network checks of server config, compiled once. */
export interface FrontDoorOptions {
  /** Sources allowed to connect at all; undefined: every source. */
  readonly allowedSources?: SourceMatcher;
  /** Load balancers whose PROXY protocol header is required and believed. */
  readonly proxyProtocol?: { readonly trustedFrom: SourceMatcher; readonly headerTimeoutMs: number };
  /** How long a client has to send its first TLS byte, ms. */
  readonly firstByteTimeoutMs: number;
}

/** An address and port. */
export interface Endpoint {
  readonly address: string;
  readonly port: number;
}

/** Why a connection was refused before TLS (bounded metric reasons). */
export type FrontDoorRefusal = 'no_tls' | 'source_not_allowed' | 'proxy_protocol';

export type FrontDoorOutcome =
  | { readonly admitted: true; readonly source: Endpoint }
  | { readonly admitted: false; readonly source: Endpoint; readonly reason: FrontDoorRefusal; readonly error: string };

/** The TCP peer of a socket just accepted (IPv4-mapped addresses written as IPv4). */
export function transportPeer(socket: net.Socket): Endpoint {
  return { address: normalizeAddress(socket.remoteAddress ?? ''), port: socket.remotePort ?? 0 };
}

/**
 * Runs the checks on a socket accepted paused; calls `done` exactly once. On admission the
 * socket is paused again with every byte read put back; on refusal it is destroyed.
 */
export function admit(socket: net.Socket, transport: Endpoint, options: FrontDoorOptions, done: (outcome: FrontDoorOutcome) => void): void {
  let source = transport;
  const allowed = (endpoint: Endpoint): boolean => options.allowedSources === undefined || options.allowedSources.matches(endpoint.address);
  const proxy = options.proxyProtocol;
  let awaitingHeader = proxy !== undefined && proxy.trustedFrom.matches(transport.address);
  let buffered: Buffer = Buffer.alloc(0);
  let finished = false;
  let timer: NodeJS.Timeout | undefined;

  const cleanUp = (): void => {
    finished = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onEnd);
  };
  const refuse = (reason: FrontDoorRefusal, error: string): void => {
    if (finished) return;
    cleanUp();
    socket.destroy();
    done({ admitted: false, source, reason, error });
  };
  const arm = (ms: number, reason: FrontDoorRefusal, error: string): void => {
    clearTimeout(timer);
    timer = setTimeout(() => refuse(reason, error), ms);
  };
  function onEnd(): void {
    if (awaitingHeader) refuse('proxy_protocol', 'connection closed before a complete PROXY protocol header');
    else refuse('no_tls', 'connection closed before any TLS byte');
  }
  function onData(chunk: Buffer): void {
    if (finished) return;
    buffered = buffered.length === 0 ? chunk : Buffer.concat([buffered, chunk]);
    if (awaitingHeader) {
      const header = parseProxyHeader(buffered);
      if (header.state === 'incomplete') return;
      if (header.state === 'invalid') return refuse('proxy_protocol', header.error);
      awaitingHeader = false;
      if (header.source !== undefined) source = { address: normalizeAddress(header.source.address), port: header.source.port };
      buffered = buffered.subarray(header.consumed);
      if (!allowed(source)) return refuse('source_not_allowed', 'source address not in server.allowedSources');
      arm(options.firstByteTimeoutMs, 'no_tls', 'no TLS byte after the PROXY protocol header');
      if (buffered.length === 0) return;
    }
    if (buffered[0] !== TLS_HANDSHAKE_RECORD) return refuse('no_tls', 'first bytes are not a TLS handshake');
    cleanUp();
    socket.pause();
    socket.unshift(buffered);
    done({ admitted: true, source });
  }

  if (!awaitingHeader && !allowed(source)) {
    refuse('source_not_allowed', 'source address not in server.allowedSources');
    return;
  }
  if (awaitingHeader && proxy !== undefined) arm(proxy.headerTimeoutMs, 'proxy_protocol', `no complete PROXY protocol header in ${proxy.headerTimeoutMs} ms`);
  else arm(options.firstByteTimeoutMs, 'no_tls', `no TLS byte in ${options.firstByteTimeoutMs} ms`);
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  socket.resume();
}
