/**
 * The caller's identity, derived once per TLS connection from the verified client
 * certificate. etcd itself only knows the certificate's CN; etcdgate also exposes the
 * subject's O and OU, the DNS and URI SANs (SPIFFE IDs), the serial and the SHA-256
 * fingerprint so that policy bindings can match on any of them.
 */
import { X509Certificate } from 'node:crypto';

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

/** Parses a distinguished name as printed by X509Certificate ("CN=a\nO=b\nO=c") into attribute lists. */
function parseDistinguishedName(dn: string): Map<string, string[]> {
  const attributes = new Map<string, string[]>();
  for (const line of dn.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const name = line.slice(0, eq);
    const value = line.slice(eq + 1);
    const values = attributes.get(name);
    if (values === undefined) attributes.set(name, [value]);
    else values.push(value);
  }
  return attributes;
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

/** Builds the identity of a verified certificate given as DER bytes. */
export function identityFromDer(der: Buffer): Identity {
  const cert = new X509Certificate(der);
  const subject = parseDistinguishedName(cert.subject);
  const san = parseSubjectAltNames(cert.subjectAltName);
  return Object.freeze({
    cn: subject.get('CN')?.[0] ?? '',
    o: Object.freeze(subject.get('O') ?? []),
    ou: Object.freeze(subject.get('OU') ?? []),
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
