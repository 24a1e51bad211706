/**
 * Binding matchers: which identities a binding applies to. Each field holds glob patterns
 * (`*` matches any run of characters, `/` included; anchored at both ends). A field matches
 * when any pattern matches any of the identity's values for it; all fields of one match
 * must hold. Fingerprints and serials are hex: compared case-insensitively, colons ignored,
 * serials also ignoring leading zeros.
 *
 * `match.source` (CIDRs) is not an identity field: it restricts a binding to connections
 * from those networks (compiled once, src/network/cidr.ts). A binding with a source list
 * never matches when the caller's address is unknown (explain or a test case without one).
 */
import { compileCidrList } from '../network/cidr.js';
import type { Identity } from '../tls/identity.js';

/** Identity fields a binding can match on. */
export const MATCH_FIELDS = ['cn', 'o', 'ou', 'dns', 'uri', 'fingerprint', 'serial'] as const;
export type MatchField = (typeof MATCH_FIELDS)[number];

/** A compiled `match:` block; `source` is the connection's client address, when known. */
export type IdentityMatcher = (identity: Identity, source?: string) => boolean;

/** Normalizes a hex value (fingerprint or serial) for comparison. */
function normalizeHex(value: string, field: 'fingerprint' | 'serial'): string {
  const hex = value.replaceAll(':', '').toLowerCase();
  if (field === 'serial' && !hex.includes('*')) return hex.replace(/^0+(?=.)/u, '');
  return hex;
}

/** Compiles one glob pattern into an anchored regular expression. */
export function globToRegExp(pattern: string): RegExp {
  const body = pattern
    .split('*')
    .map((piece) => piece.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&'))
    .join('[\\s\\S]*');
  return new RegExp(`^${body}$`, 'u');
}

function identityValues(identity: Identity, field: MatchField): readonly string[] {
  switch (field) {
    case 'cn':
      return identity.cn === '' ? [] : [identity.cn];
    case 'fingerprint':
      return identity.fingerprint === '' ? [] : [normalizeHex(identity.fingerprint, 'fingerprint')];
    case 'serial':
      return identity.serial === '' ? [] : [normalizeHex(identity.serial, 'serial')];
    default:
      return identity[field];
  }
}

/**
 * Compiles a match block (field -> patterns, at least one field, no empty pattern; the
 * document validator guarantees both). An identity without any value for a field (e.g.
 * no CN) never matches that field, not even with `*`.
 */
export function compileMatcher(match: ReadonlyMap<MatchField, readonly string[]>, source?: readonly string[]): IdentityMatcher {
  const tests = [...match].map(([field, patterns]) => {
    const regexps = patterns.map((p) =>
      globToRegExp(field === 'fingerprint' || field === 'serial' ? normalizeHex(p, field) : p),
    );
    return (identity: Identity): boolean =>
      identityValues(identity, field).some((value) => regexps.some((re) => re.test(value)));
  });
  if (tests.length === 0) return () => false; // fail closed; the validator reports `{}`
  if (source === undefined) return (identity) => tests.every((t) => t(identity));
  // The document validator reported bad CIDRs; this compiles the good ones only.
  const networks = compileCidrList(source, () => undefined);
  return (identity, address) => address !== undefined && networks.matches(address) && tests.every((t) => t(identity));
}
