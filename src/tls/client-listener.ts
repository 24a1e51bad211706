/**
 * The client-facing TLS listener. etcdgate terminates mTLS itself (node:tls) rather than
 * letting grpc-js do it, for three reasons: the identity is derived once per connection
 * instead of once per call; refused handshakes can be audited and counted; and the
 * certificate material can be swapped in place (setSecureContext) without dropping
 * open connections. Verified sockets are handed to the gRPC server through grpc-js's
 * connection injector.
 *
 * Invariant: a socket reaches gRPC only after the TLS handshake verified a client
 * certificate against the configured CA bundle (and CRL), and the certificate names
 * clientAuth among its extended key usages. No certificate, an unknown CA, an expired,
 * not yet valid or revoked certificate, a certificate for another purpose: the socket is
 * destroyed before any application data is read, and the refusal is reported once.
 *
 * OpenSSL's verdict is read from the socket (authorized / authorizationError) rather
 * than letting Node destroy the socket itself (rejectUnauthorized): Node would report
 * every such refusal as a bare "socket hang up" and the peer certificate would already
 * be gone, so neither the reason nor who tried could be audited.
 */
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { ServerTlsConfig } from '../config/types.js';
import type { HandshakeFailure } from '../observability/metrics-types.js';
import { connectionIds } from './connection-id.js';
import { identityFromDer, type Identity } from './identity.js';

/** A verified client connection, known to the proxy by its peer address. */
export interface Connection {
  /** Unique per connection (src/tls/connection-id.ts); audit records reference it. */
  readonly id: string;
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
  /** Open client sockets (handshaking or verified) beyond which new ones are dropped at once; default unlimited. */
  readonly maxConnections?: number;
}

/** id-kp-clientAuth (RFC 5280): the extended key usage a client certificate must name. */
const CLIENT_AUTH_OID = '1.3.6.1.5.5.7.3.2';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/gu;

/** Throws unless `pem` holds at least one certificate and every certificate block parses. */
function checkCertificates(pem: string, what: string): void {
  let found = 0;
  for (const match of pem.matchAll(PEM_BLOCK)) {
    if (match[1] !== 'CERTIFICATE' && match[1] !== 'TRUSTED CERTIFICATE') continue;
    try {
      new X509Certificate(match[0]);
    } catch {
      throw new Error(`${what}: a certificate does not parse`);
    }
    found += 1;
  }
  if (found === 0) throw new Error(`${what}: no PEM certificate found`);
}

/**
 * Builds the secure context options from the files named in the config (read now, at
 * call time), validated as a whole: every certificate parses, the key matches the
 * certificate, the CRL parses. Throws on any problem, so a reload with a broken or
 * half-written file keeps the material in use.
 */
export function serverContextOptions(config: ServerTlsConfig): tls.SecureContextOptions {
  const options: tls.SecureContextOptions = {
    cert: readFileSync(config.cert),
    key: readFileSync(config.key),
    ca: readFileSync(config.clientCA),
    ...(config.crl === undefined ? {} : { crl: readFileSync(config.crl) }),
    minVersion: config.minVersion,
  };
  checkTlsMaterial(options, 'server.tls');
  return options;
}

/** Throws unless cert/key/ca/crl in `options` form a usable secure context. */
export function checkTlsMaterial(options: tls.SecureContextOptions, what: string): void {
  if (options.cert !== undefined) checkCertificates(String(options.cert), `${what} certificate`);
  if (options.ca !== undefined) checkCertificates(String(options.ca), `${what} CA bundle`);
  // OpenSSL checks the PEM syntax, that the key matches the certificate and that the CRL parses.
  tls.createSecureContext(options);
}

/** True when the certificate lists clientAuth among its extended key usages. */
function allowsClientAuth(raw: Buffer): boolean {
  try {
    return new X509Certificate(raw).keyUsage?.includes(CLIENT_AUTH_OID) === true;
  } catch {
    return false;
  }
}

/** The reason OpenSSL refused a peer certificate (socket.authorizationError), as a metric reason. */
function classifyVerifyError(code: string): HandshakeFailure {
  switch (code) {
    case 'CERT_HAS_EXPIRED':
      return 'expired';
    case 'CERT_NOT_YET_VALID':
      return 'not_yet_valid';
    case 'CERT_REVOKED':
      return 'revoked';
    case 'INVALID_PURPOSE':
      return 'bad_usage';
    case 'UNABLE_TO_VERIFY_LEAF_SIGNATURE':
    case 'UNABLE_TO_GET_ISSUER_CERT':
    case 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY':
    case 'SELF_SIGNED_CERT_IN_CHAIN':
    case 'DEPTH_ZERO_SELF_SIGNED_CERT':
    case 'CERT_SIGNATURE_FAILURE':
      return 'unknown_ca';
    default:
      return 'other';
  }
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
    // Checked below, in secureConnection (see the file comment): never inject unverified.
    rejectUnauthorized: false,
    ALPNProtocols: ['h2'],
    handshakeTimeout: options.handshakeTimeoutMs ?? 10_000,
  });
  if (options.maxConnections !== undefined && options.maxConnections > 0) server.maxConnections = options.maxConnections;
  const nextConnectionId = connectionIds();

  // Node drops sockets over maxConnections before any TLS byte; 'drop' tells us about it.
  server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
    options.onRefused({ address: data?.remoteAddress ?? '', port: data?.remotePort ?? 0, reason: 'connection_limit', error: 'too many open connections' });
  });

  server.on('secureConnection', (socket: tls.TLSSocket) => {
    const peer = socket.getPeerCertificate(false);
    const raw: Buffer | undefined = peer.raw;
    let refusal: { reason: HandshakeFailure; error: string } | undefined;
    if (raw === undefined) refusal = { reason: 'no_certificate', error: 'peer did not return a certificate' };
    else if (socket.authorized !== true) {
      const code = String(socket.authorizationError ?? 'unverified');
      refusal = { reason: classifyVerifyError(code), error: code };
    } else if (!allowsClientAuth(raw)) refusal = { reason: 'bad_usage', error: 'certificate does not allow clientAuth' };
    if (refusal !== undefined || raw === undefined) {
      let identity: Identity | undefined;
      try {
        identity = raw === undefined ? undefined : identityFromDer(raw);
      } catch {
        identity = undefined;
      }
      // Read the peer before destroy(): a destroyed socket no longer knows its address.
      const address = socket.remoteAddress ?? '';
      const port = socket.remotePort ?? 0;
      socket.destroy();
      options.onRefused({
        address,
        port,
        reason: refusal?.reason ?? 'other',
        error: refusal?.error ?? 'unverified',
        ...(identity === undefined ? {} : { identity }),
      });
      return;
    }
    const connection: Connection = {
      id: nextConnectionId(),
      identity: identityFromDer(raw),
      address: socket.remoteAddress ?? '',
      port: socket.remotePort ?? 0,
      tlsVersion: socket.getProtocol() ?? '',
    };
    socket.once('close', () => options.onClosed(connection));
    options.onConnection(socket, connection);
  });

  server.on('tlsClientError', (error: Error & { code?: string }, socket: tls.TLSSocket) => {
    // Failures before a verdict on the certificate: protocol or version mismatch, timeout.
    // Node leaves the socket open after a handshake timeout (slowloris): close it here,
    // once its address is read (a destroyed socket no longer has one).
    const address = socket.remoteAddress ?? '';
    const port = socket.remotePort ?? 0;
    socket.destroy();
    options.onRefused({ address, port, reason: classify(error), error: error.message });
  });
  return server;
}
