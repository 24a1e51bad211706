/**
 * The client-facing TLS listener. etcdgate terminates mTLS itself (node:tls): the identity
 * is derived once per connection instead of once per call; refused handshakes can be
 * audited and counted; and the certificate material can be swapped in place
 * (setSecureContext) without dropping open connections. Verified sockets are handed to
 * etcdgate's HTTP/2 server (src/transport/http2/server.ts), or to the JSON gateway's
 * HTTP/1.1 side when the client did not negotiate h2.
 *
 * A plain TCP server accepts the connections (paused) and runs the network checks of
 * src/tls/front-door.ts (peer address taken at accept, PROXY protocol, allowedSources,
 * "is this TLS at all") before handing the socket to the TLS server, which never listens
 * itself. Every refusal, at any stage, is reported once with the source address.
 *
 * Open connections are re-checked (src/tls/recheck.ts) on every reload of the TLS
 * material and when a certificate of their chain reaches its notAfter; one whose
 * certificate is now revoked, expired or no longer chains to the client CA bundle is
 * reported and closed through the `closeConnection` hook.
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
import * as net from 'node:net';
import * as tls from 'node:tls';
import type { ServerTlsConfig } from '../config/types.js';
import { MAX_TIMER_MS } from '../config/read.js';
import { normalizeAddress } from '../network/cidr.js';
import type { HandshakeFailure } from '../observability/metrics-types.js';
import { connectionIds } from './connection-id.js';
import { admit, transportPeer, type Endpoint, type FrontDoorOptions } from './front-door.js';
import { AmbiguousSubjectError, identityFromDer, type Identity } from './identity.js';
import { recheckChain, trustMaterial, type RecheckFailure, type TrustMaterial } from './recheck.js';

/** A verified client connection, known to the proxy by its peer address. */
export interface Connection {
  /** Unique per connection (src/tls/connection-id.ts); audit records reference it. */
  readonly id: string;
  readonly identity: Identity;
  /** The client's address: the TCP peer, or behind a trusted PROXY-protocol balancer the client it names. */
  readonly address: string;
  readonly port: number;
  /**
   * "address:port" of the TCP peer as the socket reports it (the balancer, behind PROXY
   * protocol), in gRPC's peer form: the key of the proxy's connection table.
   */
  readonly peerKey: string;
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

/** An open connection whose certificate failed a re-check (it is being closed). */
export interface RevokedConnection {
  readonly connection: Connection;
  readonly reason: RecheckFailure;
  readonly error: string;
}

/** The server's TLS material, read and checked as a whole (see serverTlsMaterial). */
export interface ServerTlsMaterial {
  readonly options: tls.SecureContextOptions;
  readonly trust: TrustMaterial;
}

export interface ClientListenerOptions {
  readonly tls: ServerTlsConfig;
  /** Called with every verified socket; the gRPC connection injector. */
  readonly onConnection: (socket: tls.TLSSocket, connection: Connection) => void;
  readonly onRefused: (refused: RefusedHandshake) => void;
  readonly onClosed: (connection: Connection) => void;
  /** Called for an open connection whose certificate no longer passes (before it is closed). */
  readonly onRevoked?: (revoked: RevokedConnection) => void;
  /**
   * Closes a connection that failed a re-check. Default: destroy the socket. The HTTP/2
   * layer can send GOAWAY first (src/app.ts wires that).
   */
  readonly closeConnection?: (socket: tls.TLSSocket, connection: Connection) => void;
  readonly handshakeTimeoutMs?: number;
  /** Open client sockets (handshaking or verified) beyond which new ones are dropped at once; default unlimited. */
  readonly maxConnections?: number;
  /** Also offer ALPN http/1.1 (the JSON gateway, src/gateway); default: h2 only. */
  readonly http1?: boolean;
  /** Network checks before TLS (allowedSources, PROXY protocol); none by default. */
  readonly network?: Omit<FrontDoorOptions, 'firstByteTimeoutMs'>;
  /** Wall clock, ms since the epoch (re-checks and notAfter timers); default Date.now. */
  readonly now?: () => number;
}

/** The listener: a TCP server in front of a TLS server that never listens itself. */
export interface ClientListener {
  /** Listen on this (listen/close/listening/address). */
  readonly server: net.Server;
  /**
   * Puts new TLS material in force for new handshakes, then re-checks every open
   * connection against it. Returns how many connections were closed.
   */
  replaceMaterial(material: ServerTlsMaterial): number;
  /** Re-checks every open connection against the material in force; returns how many were closed. */
  recheck(): number;
  /** Verified connections open now. */
  readonly openConnections: number;
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
  return serverTlsMaterial(config).options;
}

/**
 * The secure context options and, parsed from the same bytes, the trust material open
 * connections are re-checked against. Throws on any problem (see serverContextOptions).
 */
export function serverTlsMaterial(config: ServerTlsConfig): ServerTlsMaterial {
  const ca = readFileSync(config.clientCA);
  const crl = config.crl === undefined ? undefined : readFileSync(config.crl);
  const options: tls.SecureContextOptions = {
    cert: readFileSync(config.cert),
    key: readFileSync(config.key),
    ca,
    ...(crl === undefined ? {} : { crl }),
    minVersion: config.minVersion,
  };
  checkTlsMaterial(options, 'server.tls');
  let trust: TrustMaterial;
  try {
    trust = trustMaterial(ca, crl);
  } catch (error: unknown) {
    throw new Error(`server.tls.crl: ${error instanceof Error ? error.message : String(error)}`);
  }
  return { options, trust };
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

/** The DER certificates the client presented, leaf first, as OpenSSL verified them (bounded). */
function presentedChain(socket: tls.TLSSocket): Buffer[] {
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  let cert: tls.DetailedPeerCertificate | undefined = socket.getPeerCertificate(true);
  while (cert?.raw !== undefined && chain.length < 10 && !seen.has(cert.fingerprint256)) {
    seen.add(cert.fingerprint256);
    chain.push(cert.raw);
    cert = cert.issuerCertificate;
  }
  return chain;
}

/** A verified connection being served. */
interface OpenConnection {
  readonly socket: tls.TLSSocket;
  readonly connection: Connection;
  readonly chain: readonly Buffer[];
  timer: NodeJS.Timeout | undefined;
}

/** A socket between accept and the TLS verdict. */
interface Admission {
  readonly source: Endpoint;
  /** Set once the refusal (or the verified connection) has been reported. */
  settled: boolean;
  /** Closes the socket if the handshake is not finished in time. */
  deadline?: NodeJS.Timeout;
}

/** The refusal of a certificate OpenSSL accepted, or undefined when it may be served. */
function refusalOf(socket: tls.TLSSocket, raw: Buffer | undefined): { reason: HandshakeFailure; error: string } | undefined {
  if (raw === undefined) return { reason: 'no_certificate', error: 'peer did not return a certificate' };
  if (socket.authorized !== true) {
    const code = String(socket.authorizationError ?? 'unverified');
    return { reason: classifyVerifyError(code), error: code };
  }
  if (!allowsClientAuth(raw)) return { reason: 'bad_usage', error: 'certificate does not allow clientAuth' };
  return undefined;
}

/** Creates (but does not start) the listener. */
export function createClientListener(options: ClientListenerOptions): ClientListener {
  const initial = serverTlsMaterial(options.tls);
  let trust = initial.trust;
  const now = options.now ?? Date.now;
  const handshakeTimeoutMs = options.handshakeTimeoutMs ?? 10_000;
  const frontDoor: FrontDoorOptions = { ...options.network, firstByteTimeoutMs: handshakeTimeoutMs };
  const tlsServer = tls.createServer({
    ...initial.options,
    requestCert: true,
    // Checked below, in secureConnection (see the file comment): never inject unverified.
    rejectUnauthorized: false,
    // h2 first: a client offering both gets gRPC's protocol.
    ALPNProtocols: options.http1 === true ? ['h2', 'http/1.1'] : ['h2'],
    handshakeTimeout: handshakeTimeoutMs,
  });
  const server = net.createServer({ pauseOnConnect: true });
  if (options.maxConnections !== undefined && options.maxConnections > 0) server.maxConnections = options.maxConnections;
  const nextConnectionId = connectionIds();
  /** Sockets handed to TLS and not yet decided, by the TCP peer's "address:port". */
  const handshaking = new Map<string, Admission>();
  const open = new Map<tls.TLSSocket, OpenConnection>();

  const refuse = (source: Endpoint, reason: HandshakeFailure, error: string, identity?: Identity): void => {
    options.onRefused({ address: source.address, port: source.port, reason, error, ...(identity === undefined ? {} : { identity }) });
  };

  // Node drops sockets over maxConnections before any TLS byte; 'drop' tells us about it.
  server.on('drop', (data?: { remoteAddress?: string; remotePort?: number }) => {
    refuse({ address: normalizeAddress(data?.remoteAddress ?? ''), port: data?.remotePort ?? 0 }, 'connection_limit', 'too many open connections');
  });

  server.on('connection', (socket: net.Socket) => {
    // Taken now: once the peer has gone, the socket no longer knows who it was.
    const transport = transportPeer(socket);
    const acceptedAt = performance.now();
    const key = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    // Errors (resets) surface as 'close'; without a listener they would crash the process.
    socket.on('error', () => undefined);
    admit(socket, transport, frontDoor, (outcome) => {
      if (!outcome.admitted) {
        refuse(outcome.source, outcome.reason, outcome.error);
        return;
      }
      const admission: Admission = { source: outcome.source, settled: false };
      handshaking.set(key, admission);
      // One budget from accept to a finished handshake: the wait for the first byte counts
      // too, so a client cannot take handshakeTimeoutMs twice (Node's own timeout, which
      // starts only now, stays as a backstop).
      admission.deadline = setTimeout(() => {
        if (admission.settled) return;
        admission.settled = true;
        handshaking.delete(key);
        socket.destroy();
        refuse(admission.source, 'timeout', `TLS handshake not finished ${handshakeTimeoutMs} ms after connecting`);
      }, Math.max(0, handshakeTimeoutMs - (performance.now() - acceptedAt)));
      admission.deadline.unref();
      socket.once('close', () => {
        clearTimeout(admission.deadline);
        // Give the TLS server's own report (which has the precise reason) a turn first.
        setImmediate(() => {
          if (handshaking.get(key) === admission) handshaking.delete(key);
          if (admission.settled) return;
          admission.settled = true;
          refuse(admission.source, 'other', 'connection closed during the TLS handshake');
        });
      });
      tlsServer.emit('connection', socket);
    });
  });

  /** The admission of a TLS socket (undefined once its peer has gone: the close handler reports it). */
  const settle = (socket: tls.TLSSocket): Admission | undefined => {
    const key = `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`;
    const admission = handshaking.get(key);
    if (admission === undefined || admission.settled) return undefined;
    admission.settled = true;
    clearTimeout(admission.deadline);
    handshaking.delete(key);
    return admission;
  };

  const close = (entry: OpenConnection, reason: RecheckFailure, error: string): void => {
    clearTimeout(entry.timer);
    open.delete(entry.socket);
    options.onRevoked?.({ connection: entry.connection, reason, error });
    if (options.closeConnection === undefined) entry.socket.destroy();
    else options.closeConnection(entry.socket, entry.connection);
  };

  /** Re-checks one connection; arms its timer for the earliest notAfter of its chain. Returns whether it was closed. */
  const recheckOne = (entry: OpenConnection): boolean => {
    clearTimeout(entry.timer);
    let verdict;
    try {
      verdict = recheckChain(entry.chain, trust, now());
    } catch (error: unknown) {
      verdict = { ok: false as const, reason: 'untrusted' as const, error: `re-check failed: ${error instanceof Error ? error.message : String(error)}` };
    }
    if (!verdict.ok) {
      close(entry, verdict.reason, verdict.error);
      return true;
    }
    armExpiry(entry, verdict.notAfter.getTime());
    return false;
  };

  /** Re-checks `entry` one second past `notAfter` (so the check then sees it expired); long waits are re-armed. */
  function armExpiry(entry: OpenConnection, notAfter: number): void {
    clearTimeout(entry.timer);
    const delay = Math.min(MAX_TIMER_MS, Math.max(0, notAfter - now() + 1000));
    entry.timer = setTimeout(() => recheckOne(entry), Number.isFinite(delay) ? delay : MAX_TIMER_MS);
    entry.timer.unref();
  }

  tlsServer.on('secureConnection', (socket: tls.TLSSocket) => {
    const admission = settle(socket);
    if (admission === undefined) {
      socket.destroy();
      return;
    }
    const peer = socket.getPeerCertificate(false);
    const raw: Buffer | undefined = peer.raw;
    let refusal = refusalOf(socket, raw);
    let identity: Identity | undefined;
    if (raw !== undefined) {
      try {
        identity = identityFromDer(raw);
      } catch (error: unknown) {
        // A certificate OpenSSL accepted but that is not one identity (src/tls/subject.ts) is refused too.
        const reason: HandshakeFailure = error instanceof AmbiguousSubjectError ? 'ambiguous_subject' : 'other';
        refusal ??= { reason, error: error instanceof Error ? error.message : 'certificate does not parse' };
      }
    }
    if (refusal !== undefined || identity === undefined) {
      socket.destroy();
      refuse(admission.source, refusal?.reason ?? 'other', refusal?.error ?? 'unverified', identity);
      return;
    }
    const connection: Connection = {
      id: nextConnectionId(),
      identity,
      address: admission.source.address,
      port: admission.source.port,
      peerKey: `${socket.remoteAddress ?? ''}:${socket.remotePort ?? 0}`,
      tlsVersion: socket.getProtocol() ?? '',
    };
    const chain = presentedChain(socket);
    const entry: OpenConnection = { socket, connection, chain, timer: undefined };
    open.set(socket, entry);
    socket.once('close', () => {
      clearTimeout(entry.timer);
      open.delete(socket);
      options.onClosed(connection);
    });
    // OpenSSL has just verified the chain: only the timer for its earliest notAfter is needed.
    armExpiry(entry, Math.min(...chain.map((der) => Date.parse(new X509Certificate(der).validTo))));
    options.onConnection(socket, connection);
  });

  tlsServer.on('tlsClientError', (error: Error & { code?: string }, socket: tls.TLSSocket) => {
    // Failures before a verdict on the certificate: protocol or version mismatch, timeout.
    // Node leaves the socket open after a handshake timeout (slowloris): close it here.
    const admission = settle(socket);
    socket.destroy();
    if (admission !== undefined) refuse(admission.source, classify(error), error.message);
  });

  const recheckAll = (): number => {
    let closed = 0;
    for (const entry of [...open.values()]) if (recheckOne(entry)) closed += 1;
    return closed;
  };

  return {
    server,
    replaceMaterial(material: ServerTlsMaterial): number {
      tlsServer.setSecureContext(material.options);
      trust = material.trust;
      return recheckAll();
    },
    recheck: recheckAll,
    get openConnections(): number {
      return open.size;
    },
  };
}
