/**
 * The certificate subject read from the DER itself, and the one-identity rule.
 *
 * Why not Node's printed `X509Certificate.subject`: it joins a multi-valued RDN into one
 * line (`CN=tenant-a + CN=tenant-b`), which then reads as a single CN that a `tenant-*`
 * glob matches, and with two CN attributes etcdgate took the first while Go's crypto/x509
 * (so etcd's own CN auth, and Go-based issuers and approvers) takes the last. A
 * certificate is one identity to etcdgate only if every reader would agree on it:
 *
 * - at most one CN attribute in the whole subject;
 * - no multi-valued RDN (`CN=a+CN=b`, `O=x+OU=y`), whatever the attributes;
 * - CN, O and OU values must be one of X.509's string types.
 *
 * O and OU may each appear any number of times, in separate RDNs: that is how Kubernetes
 * writes a user's groups, and every reader returns them all, in order.
 */
import { AsnConvert } from '@peculiar/asn1-schema';
import { Certificate, type AttributeValue } from '@peculiar/asn1-x509';

const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';
const OID_OU = '2.5.4.11';

/** The subject attributes an identity is built from. */
export interface SubjectFields {
  readonly cn: string;
  readonly o: readonly string[];
  readonly ou: readonly string[];
}

export type SubjectParse = { readonly ok: true; readonly subject: SubjectFields } | { readonly ok: false; readonly error: string };

/** The text of a string-typed attribute value; undefined for any other ASN.1 type. */
function stringValue(value: AttributeValue): string | undefined {
  return value.utf8String ?? value.printableString ?? value.teletexString ?? value.bmpString ?? value.universalString ?? value.ia5String;
}

/** Reads the subject of a DER certificate and applies the one-identity rule (see the file comment). */
export function parseSubject(der: Uint8Array): SubjectParse {
  let certificate: Certificate;
  try {
    certificate = AsnConvert.parse(der, Certificate);
  } catch {
    return { ok: false, error: 'certificate does not parse' };
  }
  const cn: string[] = [];
  const o: string[] = [];
  const ou: string[] = [];
  for (const rdn of certificate.tbsCertificate.subject) {
    if (rdn.length !== 1) return { ok: false, error: 'subject has a multi-valued RDN' };
    const [attribute] = rdn;
    if (attribute === undefined) continue;
    const target = attribute.type === OID_CN ? cn : attribute.type === OID_O ? o : attribute.type === OID_OU ? ou : undefined;
    if (target === undefined) continue;
    const value = stringValue(attribute.value);
    if (value === undefined) return { ok: false, error: 'subject CN, O or OU is not a string' };
    target.push(value);
  }
  if (cn.length > 1) return { ok: false, error: 'subject has more than one CN' };
  return { ok: true, subject: { cn: cn[0] ?? '', o, ou } };
}
