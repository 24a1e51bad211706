/**
 * The client-facing TLS listener. etcdgate terminates mTLS itself (node:tls) rather than
 * letting grpc-js do it, for three reasons: the identity is derived once per connection
 * instead of once per call; refused handshakes can be audited and counted; and the
 * certificate material can be swapped in place (setSecureContext) without dropping
 * open connections. Verified sockets are handed to the gRPC server through grpc-js's
 * connection injector.
 *
 * Invariant: a socket reaches gRPC only after the TLS handshake verified a client
 * certificate against the configured CA bundle (rejectUnauthorized). No certificate, an
 * unknown CA, an expired or revoked certificate: the handshake fails, nothing is served.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { ServerTlsConfig } from '../config/types.js';
import type { HandshakeFailure } from '../observability/metrics-types.js';
import { identityFromDer, type Identity } from './identity.js';

/** A verified client connection, known to the proxy by its peer address. */
export interface Connection {
  readonly identity: Identity;
  readonly address: string;
  readonly port: number;
  readonly tlsVersion: string;
}

export interface RefusedHandshake {
  readonly address: string;
  readonly port: number;
  readonly reason: HandshakeFailure;
  readonly error: string;
  /** Present when the peer did send a certificate (e.g. from an unknown CA). */
  readonly identity?: Identity;
}

export interface ClientListenerOptions {
  readonly tls: ServerTlsConfig;
  /** Called with every verified socket; the gRPC connection injector. */
  readonly onConnection: (socket: tls.TLSSocket, connection: Connection) => void;
  readonly onRefused: (refused: RefusedHandshake) => void;
  readonly onClosed: (connection: Connection) => void;
  readonly handshakeTimeoutMs?: number;
}

/** Builds the secure context options from the files named in the config (read now, at call time). */
export function serverContextOptions(config: ServerTlsConfig): tls.SecureContextOptions {
  return {
    cert: readFileSync(config.cert),
    key: readFileSync(config.key),
    ca: readFileSync(config.clientCA),
    ...(config.crl === undefined ? {} : { crl: readFileSync(config.crl) }),
    minVersion: config.minVersion,
  };
}

/** Maps OpenSSL's verification error codes to the bounded metric reasons. */
function classify(error: Error & { code?: string }): HandshakeFailure {
  const code = error.code ?? '';
  const message = error.message;
  if (code === 'ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE' || /peer did not return a certificate/iu.test(message)) return 'no_certificate';
  if (code === 'CERT_HAS_EXPIRED' || /certificate expired|certificate has expired/iu.test(message)) return 'expired';
  if (code === 'CERT_NOT_YET_VALID' || /not yet valid/iu.test(message)) return 'not_yet_valid';
  if (code === 'CERT_REVOKED' || /revoked/iu.test(message)) return 'revoked';
  if (code === 'UNABLE_TO_VERIFY_LEAF_SIGNATURE' || code === 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY' || code === 'SELF_SIGNED_CERT_IN_CHAIN' || code === 'DEPTH_ZERO_SELF_SIGNED_CERT' || /unknown ca|unable to get (local )?issuer|self.signed/iu.test(message)) return 'unknown_ca';
  if (code === 'INVALID_PURPOSE' || /unsupported certificate purpose/iu.test(message)) return 'bad_usage';
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT' || /timed? ?out/iu.test(message)) return 'timeout';
  if (code.startsWith('ERR_SSL_')) return 'protocol';
  return 'other';
}

/** Creates (but does not start) the listener. */
export function createClientListener(options: ClientListenerOptions): tls.Server {
  const server = tls.createServer({
    ...serverContextOptions(options.tls),
    requestCert: true,
    rejectUnauthorized: true,
    ALPNProtocols: ['h2'],
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
  });

  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const peer = socket.getPeerCertificate(false);
    if (!socket.authorized || peer.raw === undefined) {
      socket.destroy();
      return;
    }
    const connection: Connection = {
      identity: identityFromDer(peer.raw),
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      tlsVersion: socket.getProtocol() ?? '',
    };
    socket.once('close', () => options.onClosed(connection));
    options.onConnection(socket, connection);
  });

  server.on('tlsClientError', (error: Error & { code?: string }, socket: tls.TLSSocket) => {
    // With rejectUnauthorized the peer certificate may still be readable (unknown CA,
    // expired): record who tried, never trust it.
    let identity: Identity | undefined;
    try {
      const peer = socket.getPeerCertificate(false);
      if (peer.raw !== undefined) identity = identityFromDer(peer.raw);
    } catch {
      identity = undefined;
    }
    options.onRefused({
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      reason: classify(error),
      error: error.message,
      ...(identity === undefined ? {} : { identity }),
    });
  });
  return server;
}
