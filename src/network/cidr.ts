/**
 * Source-address rules: lists of IPv4 and IPv6 networks in CIDR notation, parsed once
 * (at config or policy load) into a matcher that answers "is this peer address inside
 * any of them" with one Set lookup per distinct prefix length.
 *
 * Used by `server.allowedSources` and `server.proxyProtocol.trustedFrom` (checked when a
 * TCP connection is accepted) and by policy bindings' `match.source`.
 *
 * Rules:
 * - `10.0.0.0/8`, `2001:db8::/32`; a bare address means that one address (/32 or /128).
 * - The network must be written as its network address: `10.0.0.1/8` is refused (it is
 *   most often a typo for a /32, and silently widening it would be a security bug).
 * - A peer seen as an IPv4-mapped IPv6 address (`::ffff:10.1.2.3`, how a dual-stack
 *   socket reports IPv4 peers) is matched as the IPv4 address it carries; CIDRs must
 *   therefore be written in IPv4 form, and a `::ffff:` CIDR is refused.
 * - A zone index (`fe80::1%eth0`) on a peer address is ignored.
 */
import net from 'node:net';

/** Parse result: the value, or why the text was refused. */
export type CidrParse = { readonly ok: true; readonly network: Network } | { readonly ok: false; readonly error: string };

/** One parsed network. */
export interface Network {
  readonly family: 4 | 6;
  /** The network address as an integer (32 bits for IPv4, 128 for IPv6). */
  readonly bits: bigint;
  readonly prefixLength: number;
  /** Canonical text, e.g. `10.0.0.0/8`. */
  readonly text: string;
}

const V4_MAPPED = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/iu;

/** The address as an integer of its family's width; undefined when `address` is not an IP address. */
export function addressBits(address: string): { family: 4 | 6; bits: bigint } | undefined {
  const zone = address.indexOf('%');
  let text = zone >= 0 ? address.slice(0, zone) : address;
  const mapped = V4_MAPPED.exec(text);
  if (mapped?.[1] !== undefined) text = mapped[1];
  if (net.isIPv4(text)) {
    let bits = 0n;
    for (const part of text.split('.')) bits = (bits << 8n) | BigInt(Number(part));
    return { family: 4, bits };
  }
  if (!net.isIPv6(text)) return undefined;
  return { family: 6, bits: ipv6Bits(text) };
}

/** An IPv6 address (already validated by net.isIPv6) as a 128-bit integer. */
function ipv6Bits(address: string): bigint {
  let text = address;
  // A trailing dotted quad (::ffff:1.2.3.4, 64:ff9b::1.2.3.4) is two 16-bit groups.
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    const [a = 0, b = 0, c = 0, d = 0] = tail.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [left = '', right] = text.split('::');
  const leftGroups = left === '' ? [] : left.split(':');
  let groups = leftGroups;
  if (right !== undefined) {
    const rightGroups = right === '' ? [] : right.split(':');
    groups = [...leftGroups, ...new Array<string>(8 - leftGroups.length - rightGroups.length).fill('0'), ...rightGroups];
  }
  let bits = 0n;
  for (const group of groups) bits = (bits << 16n) | BigInt(Number.parseInt(group, 16));
  return bits;
}

function width(family: 4 | 6): number {
  return family === 4 ? 32 : 128;
}

function mask(family: 4 | 6, prefixLength: number): bigint {
  const all = (1n << BigInt(width(family))) - 1n;
  return prefixLength === 0 ? 0n : all ^ ((1n << BigInt(width(family) - prefixLength)) - 1n);
}

/** Parses one CIDR (or bare address). */
export function parseCidr(text: string): CidrParse {
  const slash = text.indexOf('/');
  const addressText = slash < 0 ? text : text.slice(0, slash);
  if (V4_MAPPED.test(addressText)) return { ok: false, error: 'write IPv4 networks in IPv4 form (IPv4-mapped peers are matched as IPv4)' };
  if (addressText.includes('%')) return { ok: false, error: 'must not have a zone index (%...)' };
  const parsed = addressBits(addressText);
  if (parsed === undefined) return { ok: false, error: 'is not an IPv4 or IPv6 address or network (e.g. 10.0.0.0/8, 2001:db8::/32)' };
  const max = width(parsed.family);
  let prefixLength = max;
  if (slash >= 0) {
    const lengthText = text.slice(slash + 1);
    if (!/^\d{1,3}$/u.test(lengthText) || Number(lengthText) > max) return { ok: false, error: `prefix length must be 0 to ${max}` };
    prefixLength = Number(lengthText);
  }
  const masked = parsed.bits & mask(parsed.family, prefixLength);
  if (masked !== parsed.bits) {
    return { ok: false, error: `has host bits set; the network is ${formatNetwork(parsed.family, masked, prefixLength)} (or write /${max} for one address)` };
  }
  return { ok: true, network: { family: parsed.family, bits: masked, prefixLength, text: formatNetwork(parsed.family, masked, prefixLength) } };
}

function formatNetwork(family: 4 | 6, bits: bigint, prefixLength: number): string {
  if (family === 4) {
    const parts = [24n, 16n, 8n, 0n].map((shift) => String((bits >> shift) & 0xffn));
    return `${parts.join('.')}/${prefixLength}`;
  }
  const groups: string[] = [];
  for (let shift = 112n; shift >= 0n; shift -= 16n) groups.push(((bits >> shift) & 0xffffn).toString(16));
  // The WHATWG URL parser writes IPv6 hosts in their RFC 5952 canonical (compressed) form.
  return `${new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1)}/${prefixLength}`;
}

/** A compiled list of networks. */
export interface SourceMatcher {
  /** Whether `address` (a peer address as a socket reports it) is inside any network; false for a non-IP string. */
  matches(address: string): boolean;
  /** The networks, canonical text, in the order given. */
  readonly networks: readonly string[];
}

/** Compiles parsed networks into a matcher: per family, one Set of masked addresses per prefix length. */
export function compileNetworks(networks: readonly Network[]): SourceMatcher {
  const byFamily = new Map<4 | 6, Map<number, Set<bigint>>>();
  for (const network of networks) {
    let lengths = byFamily.get(network.family);
    if (lengths === undefined) byFamily.set(network.family, (lengths = new Map()));
    let set = lengths.get(network.prefixLength);
    if (set === undefined) lengths.set(network.prefixLength, (set = new Set()));
    set.add(network.bits);
  }
  const plans = new Map<4 | 6, { mask: bigint; set: Set<bigint> }[]>();
  for (const [family, lengths] of byFamily) {
    plans.set(family, [...lengths].map(([length, set]) => ({ mask: mask(family, length), set })));
  }
  return Object.freeze({
    networks: Object.freeze(networks.map((n) => n.text)),
    matches(address: string): boolean {
      const parsed = addressBits(address);
      if (parsed === undefined) return false;
      const plan = plans.get(parsed.family);
      if (plan === undefined) return false;
      for (const { mask: m, set } of plan) if (set.has(parsed.bits & m)) return true;
      return false;
    },
  });
}

/**
 * Parses a list of CIDR texts; every bad entry is reported through `report(index, message)`
 * (the caller attaches its field path). Returns the matcher of the good entries.
 */
export function compileCidrList(texts: readonly string[], report: (index: number, message: string) => void): SourceMatcher {
  const networks: Network[] = [];
  texts.forEach((text, i) => {
    const parsed = parseCidr(text.trim());
    if (parsed.ok) networks.push(parsed.network);
    else report(i, parsed.error);
  });
  return compileNetworks(networks);
}

/** The address in the form records and rules use: IPv4-mapped IPv6 written as IPv4, zone index dropped. */
export function normalizeAddress(address: string): string {
  const zone = address.indexOf('%');
  const text = zone >= 0 ? address.slice(0, zone) : address;
  return V4_MAPPED.exec(text)?.[1] ?? text;
}
