/**
 * Re-checking the certificate of a connection that is already open. OpenSSL checks a
 * client certificate once, at the handshake; kube-apiserver and watch connections stay
 * open for days, so without this a certificate revoked (or expired) after the handshake
 * keeps working on its connection. Node exposes no chain or CRL check outside a
 * handshake, so this module does the part that can change over a connection's life:
 *
 * - every certificate on the path has to be within its validity period now;
 * - the path has to reach a self-signed certificate of the current client CA bundle,
 *   each link checked with X509Certificate.checkIssued (names, key identifiers, key
 *   usage) and verify (the signature), the issuer being a CA; the client's own
 *   intermediates (as presented at the handshake) may be used in between, as OpenSSL does;
 * - no certificate on the path may be listed in a CRL of the configured file whose issuer
 *   is that certificate's issuer; such a CRL must verify with the issuer's key (a CRL from
 *   that issuer that does not verify makes the connection untrusted, as it makes OpenSSL
 *   refuse new handshakes).
 *
 * Not re-checked: extended key usage and the subject rule (they cannot change for a given
 * certificate), and a CRL's nextUpdate (an expired CRL refuses new handshakes, but closing
 * every open connection because a CRL was not renewed in time would be an outage; the
 * file's next reload re-checks everything anyway).
 *
 * CRLs are parsed with @peculiar/asn1-x509 (RFC 5280 schemas); signatures are verified
 * with node:crypto.
 */
import { X509Certificate, verify as verifySignature, type KeyObject } from 'node:crypto';
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, CertificateList } from '@peculiar/asn1-x509';

import type { RecheckFailure } from '../observability/metrics-types.js';

export type { RecheckFailure };

export type RecheckVerdict = { readonly ok: true; readonly notAfter: Date } | { readonly ok: false; readonly reason: RecheckFailure; readonly error: string };

/** One CRL of the configured file, parsed once per reload. */
interface ParsedCrl {
  /** DER of the issuer name (re-encoded, compared with certificates' re-encoded issuer). */
  readonly issuer: Buffer;
  readonly tbs: Buffer;
  readonly signature: Buffer;
  /** node:crypto digest name, null for EdDSA, undefined for an algorithm etcdgate cannot verify. */
  readonly digest: string | null | undefined;
  /** Revoked serials, upper-case hex without leading zeros. */
  readonly revoked: ReadonlySet<string>;
}

/** The client CA bundle and CRLs a re-check is made against (what the listener's secure context was built from). */
export interface TrustMaterial {
  readonly anchors: readonly X509Certificate[];
  readonly crls: readonly ParsedCrl[];
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]+?)-----END \1-----/gu;

/** Signature algorithm OIDs (RFC 5758, RFC 4055, RFC 8410) -> node:crypto digest. */
const DIGESTS: Readonly<Record<string, string | null>> = {
  '1.2.840.10045.4.3.2': 'sha256',
  '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512',
  '1.2.840.113549.1.1.5': 'sha1',
  '1.2.840.113549.1.1.11': 'sha256',
  '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512',
  '1.3.101.112': null,
  '1.3.101.113': null,
};

/** Path length bound (OpenSSL's default verify depth is 100; real client chains are 2 or 3 long). */
const MAX_DEPTH = 8;

function pemBlocks(pem: string, labels: readonly string[]): Buffer[] {
  const blocks: Buffer[] = [];
  for (const match of pem.matchAll(PEM_BLOCK)) {
    if (labels.includes(match[1] ?? '')) blocks.push(Buffer.from((match[2] ?? '').replace(/\s+/gu, ''), 'base64'));
  }
  return blocks;
}

/** Serial as upper-case hex without leading zeros (an INTEGER's bytes may carry a sign byte). */
function serialText(bytes: Uint8Array | string): string {
  const hex = typeof bytes === 'string' ? bytes : Buffer.from(bytes).toString('hex');
  return hex.toUpperCase().replace(/^0+(?=.)/u, '');
}

function issuerDer(der: Buffer): Buffer {
  return Buffer.from(AsnConvert.serialize(AsnConvert.parse(der, Certificate).tbsCertificate.issuer));
}

function parseCrl(der: Buffer): ParsedCrl {
  const crl = AsnConvert.parse(der, CertificateList);
  if (crl.tbsCertListRaw === undefined) throw new Error('CRL: the signed part could not be read');
  return {
    issuer: Buffer.from(AsnConvert.serialize(crl.tbsCertList.issuer)),
    tbs: Buffer.from(crl.tbsCertListRaw),
    signature: Buffer.from(crl.signature),
    digest: DIGESTS[crl.signatureAlgorithm.algorithm],
    revoked: new Set((crl.tbsCertList.revokedCertificates ?? []).map((entry) => serialText(new Uint8Array(entry.userCertificate)))),
  };
}

/**
 * Parses the CA bundle and CRL file contents (the bytes the secure context was built
 * from). Throws on a CRL it cannot parse, so a reload keeps the old material whole.
 */
export function trustMaterial(ca: string | Buffer, crl: string | Buffer | undefined): TrustMaterial {
  const anchors = pemBlocks(String(ca), ['CERTIFICATE', 'TRUSTED CERTIFICATE']).map((der) => new X509Certificate(der));
  const crls = crl === undefined ? [] : pemBlocks(String(crl), ['X509 CRL']).map(parseCrl);
  return Object.freeze({ anchors: Object.freeze(anchors), crls: Object.freeze(crls) });
}

function validityProblem(cert: X509Certificate, now: number): 'expired' | 'not_yet_valid' | undefined {
  if (now > Date.parse(cert.validTo)) return 'expired';
  if (now < Date.parse(cert.validFrom)) return 'not_yet_valid';
  return undefined;
}

function issues(issuer: X509Certificate, subject: X509Certificate): boolean {
  return issuer.ca && subject.checkIssued(issuer) && subject.verify(issuer.publicKey);
}

function selfSigned(cert: X509Certificate): boolean {
  return cert.checkIssued(cert) && cert.verify(cert.publicKey);
}

function crlVerifies(crl: ParsedCrl, key: KeyObject): boolean {
  if (crl.digest === undefined) return false;
  try {
    return verifySignature(crl.digest, crl.tbs, key, crl.signature);
  } catch {
    return false;
  }
}

/**
 * The path from `leaf` to a self-signed anchor, or undefined. Anchors are preferred at
 * each step; presented intermediates fill the gaps.
 */
function buildPath(leaf: X509Certificate, intermediates: readonly X509Certificate[], material: TrustMaterial): X509Certificate[] | undefined {
  const path = [leaf];
  let current = leaf;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const anchor = material.anchors.find((candidate) => issues(candidate, current));
    if (anchor !== undefined) {
      if (anchor.raw.equals(current.raw)) return path;
      path.push(anchor);
      if (selfSigned(anchor)) return path;
      current = anchor;
      continue;
    }
    const next = intermediates.find((candidate) => !candidate.raw.equals(current.raw) && issues(candidate, current));
    if (next === undefined) return undefined;
    path.push(next);
    current = next;
  }
  return undefined;
}

/**
 * Re-checks a connection's certificate chain (`chain[0]` the leaf, then what the client
 * presented) against `material` at time `now` (ms since the epoch).
 */
export function recheckChain(chain: readonly Buffer[], material: TrustMaterial, now: number): RecheckVerdict {
  const [leafDer, ...rest] = chain;
  if (leafDer === undefined) return { ok: false, reason: 'untrusted', error: 'no certificate' };
  const leaf = new X509Certificate(leafDer);
  const path = buildPath(leaf, rest.map((der) => new X509Certificate(der)), material);
  if (path === undefined) return { ok: false, reason: 'untrusted', error: 'certificate no longer chains to the client CA bundle' };
  for (const cert of path) {
    const problem = validityProblem(cert, now);
    if (problem === undefined) continue;
    const which = cert === leaf ? 'certificate' : `a certificate of the chain (${cert.subject.replaceAll('\n', ', ')})`;
    // Not yet valid can only follow a clock stepping back: not an expiry, but no trust either.
    return problem === 'expired' ? { ok: false, reason: 'expired', error: `${which} has expired` } : { ok: false, reason: 'untrusted', error: `${which} is not yet valid` };
  }
  for (let i = 0; i + 1 < path.length; i++) {
    const cert = path[i];
    const issuer = path[i + 1];
    if (cert === undefined || issuer === undefined) continue;
    const issuerName = issuerDer(cert.raw);
    for (const crl of material.crls) {
      if (!crl.issuer.equals(issuerName)) continue;
      if (!crlVerifies(crl, issuer.publicKey)) return { ok: false, reason: 'untrusted', error: 'the CRL of the certificate issuer does not verify' };
      if (crl.revoked.has(serialText(cert.serialNumber))) {
        return { ok: false, reason: 'revoked', error: i === 0 ? 'certificate revoked' : 'an intermediate certificate of the chain is revoked' };
      }
    }
  }
  const notAfter = Math.min(...path.map((cert) => Date.parse(cert.validTo)));
  return { ok: true, notAfter: new Date(notAfter) };
}
