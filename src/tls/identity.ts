/**
 * The caller's identity, derived once per TLS connection from the verified client
 * certificate. etcd itself only knows the certificate's CN; etcdgate also exposes the
 * subject's O and OU, the DNS and URI SANs (SPIFFE IDs), the serial and the SHA-256
 * fingerprint so that policy bindings can match on any of them.
 *
 * CN, O and OU are read from the certificate's DER (src/tls/subject.ts), and a subject
 * that is not one unambiguous identity (two CNs, a multi-valued RDN) is refused:
 * identityFromDer throws AmbiguousSubjectError, and the listener refuses the handshake.
 */
import { X509Certificate } from 'node:crypto';
import { parseSubject } from './subject.js';

export interface Identity {
  /** Subject common name, or "" when the certificate has none. */
  readonly cn: string;
  /** Subject organization(s) (O). */
  readonly o: readonly string[];
  /** Subject organizational unit(s) (OU). */
  readonly ou: readonly string[];
  /** DNS subject alternative names. */
  readonly dns: readonly string[];
  /** URI subject alternative names, e.g. SPIFFE IDs. */
  readonly uri: readonly string[];
  /** IP subject alternative names. */
  readonly ip: readonly string[];
  /** Serial number, upper-case hex without separators (as Node prints it). */
  readonly serial: string;
  /** SHA-256 fingerprint of the DER certificate, lower-case hex without separators. */
  readonly fingerprint: string;
  /** Issuer distinguished name, one RDN per line as Node prints it. */
  readonly issuer: string;
  /** Subject distinguished name, one RDN per line as Node prints it. */
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Thrown by identityFromDer for a certificate whose subject is not one unambiguous identity. */
export class AmbiguousSubjectError extends Error {
  override readonly name = 'AmbiguousSubjectError';
}

/**
 * Splits X509Certificate.subjectAltName ("DNS:a, URI:spiffe://x, IP Address:1.2.3.4").
 * Node quotes entries that contain separators (JSON string syntax), so a SAN value can
 * never smuggle in a second entry.
 */
function parseSubjectAltNames(san: string | undefined): { dns: string[]; uri: string[]; ip: string[] } {
  const out = { dns: [] as string[], uri: [] as string[], ip: [] as string[] };
  if (san === undefined || san === '') return out;
  const entryPattern = /(DNS|URI|IP Address|email|DirName|othername|Registered ID):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/gu;
  for (const match of san.matchAll(entryPattern)) {
    const kind = match[1];
    const raw = match[2] ?? '';
    const value = raw.startsWith('"') ? (JSON.parse(raw) as string) : raw;
    if (kind === 'DNS') out.dns.push(value);
    else if (kind === 'URI') out.uri.push(value);
    else if (kind === 'IP Address') out.ip.push(value);
  }
  return out;
}

/** Builds the identity of a verified certificate given as DER bytes; throws AmbiguousSubjectError (see above). */
export function identityFromDer(der: Buffer): Identity {
  const cert = new X509Certificate(der);
  const parsed = parseSubject(cert.raw);
  if (!parsed.ok) throw new AmbiguousSubjectError(parsed.error);
  const { subject } = parsed;
  const san = parseSubjectAltNames(cert.subjectAltName);
  return Object.freeze({
    cn: subject.cn,
    o: Object.freeze([...subject.o]),
    ou: Object.freeze([...subject.ou]),
    dns: Object.freeze(san.dns),
    uri: Object.freeze(san.uri),
    ip: Object.freeze(san.ip),
    serial: cert.serialNumber.toUpperCase(),
    fingerprint: cert.fingerprint256.replaceAll(':', '').toLowerCase(),
    issuer: cert.issuer,
    subject: cert.subject,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
  });
}

/** The name etcdgate reports for an identity in logs and audit records. */
export function displayName(identity: Identity): string {
  if (identity.cn !== '') return identity.cn;
  return identity.uri[0] ?? identity.dns[0] ?? `sha256:${identity.fingerprint}`;
}
