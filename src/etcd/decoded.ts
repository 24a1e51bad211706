/**
 * Small builders shared by the per-service decoders: audit details that keep only
 * non-default values, key summaries without `undefined` members, lease checks without
 * duplicates, and the decoders of messages whose content no decision depends on.
 */
import type { KeySummary } from '../audit/types.js';
import type { Access, AccessOrigin, Capability } from '../policy/types.js';
import type { DecodedRequest, LeaseKeysCheck } from './types.js';
import { WireReader } from './wire.js';

/**
 * A lease ID (int64, as a decimal string) the way etcdctl prints it: Go's `%016x`, lower-
 * case hex zero-padded to 16 characters, the sign counted in the width when negative.
 * Anything that is not a decimal integer is returned unchanged.
 */
export function leaseIdHex(decimal: string): string {
  if (!/^-?\d{1,20}$/u.test(decimal)) return decimal;
  const value = BigInt(decimal);
  if (value < 0n) return `-${(-value).toString(16).padStart(15, '0')}`;
  return value.toString(16).padStart(16, '0');
}

/** A zero-length key or range end (proto3's default for an absent bytes field). */
export const EMPTY: Buffer = Buffer.alloc(0);

type DetailValue = string | number | boolean;

/**
 * Collects the scalar details of an audit summary. Proto3 defaults (0, false, "") are
 * left out so records stay short; values that must appear even when zero use `always`.
 */
export class Details {
  readonly #out: Record<string, DetailValue> = {};
  #any = false;

  /** Records an int64/uint64 decimal string unless it is "0". */
  int(name: string, decimal: string): this {
    return decimal === '0' ? this : this.always(name, decimal);
  }

  /**
   * Records a lease ID twice: `name` in hex as etcdctl and etcd's logs print it, and
   * `name_decimal` as the API carries it. Left out when "0" unless `always`.
   */
  lease(name: string, decimal: string, always = false): this {
    if (decimal === '0' && !always) return this;
    return this.always(name, leaseIdHex(decimal)).always(`${name}_decimal`, decimal);
  }

  /** Records a flag when it is set. */
  flag(name: string, value: boolean): this {
    return value ? this.always(name, true) : this;
  }

  /** Records a string unless it is empty. */
  text(name: string, value: string): this {
    return value === '' ? this : this.always(name, value);
  }

  /** Records a value whatever it is. */
  always(name: string, value: DetailValue): this {
    this.#out[name] = value;
    this.#any = true;
    return this;
  }

  /** The details, or undefined when there are none. */
  build(): Readonly<Record<string, DetailValue>> | undefined {
    return this.#any ? this.#out : undefined;
  }
}

/**
 * Builds a KeySummary. An empty key is left out, and so is an empty range end (the
 * single-key case), so exactOptionalPropertyTypes never sees `undefined` members.
 */
export function keySummary(op: string, key?: Buffer, rangeEnd?: Buffer, details?: Details): KeySummary {
  const out: { op: string; key?: Buffer; rangeEnd?: Buffer; details?: Readonly<Record<string, DetailValue>> } = { op };
  if (key !== undefined && key.length > 0) out.key = key;
  if (rangeEnd !== undefined && rangeEnd.length > 0) out.rangeEnd = rangeEnd;
  const built = details?.build();
  if (built !== undefined) out.details = built;
  return out;
}

/** Lease checks of one request, deduplicated by lease and kind, in first-seen order. */
export class LeaseChecks {
  readonly #seen = new Set<string>();
  readonly list: LeaseKeysCheck[] = [];

  add(leaseId: string, kind: 'read' | 'write'): void {
    const id = `${kind}:${leaseId}`;
    if (this.#seen.has(id)) return;
    this.#seen.add(id);
    this.list.push({ leaseId, kind });
  }
}

/** A read or write access on `[key, rangeEnd)` (empty rangeEnd: the single key). */
export function keyAccess(kind: 'read' | 'write', key: Buffer, rangeEnd: Buffer, origin?: AccessOrigin): Access {
  return origin === undefined ? { kind, key, rangeEnd } : { kind, key, rangeEnd, origin };
}

/** A capability access. */
export function capability(cap: Capability): Access {
  return { kind: 'capability', capability: cap };
}

/** The accesses, summary and lease checks of a request in one value. */
export function decoded(
  accesses: readonly Access[],
  summary: KeySummary,
  leaseChecks: readonly LeaseKeysCheck[] = [],
): DecodedRequest {
  return { accesses, summary, leaseChecks };
}

/**
 * Walks a message only to check it is well-formed. Used for requests whose content no
 * decision or record needs (StatusRequest, AuthEnableRequest, ...): their fields are
 * skipped, but malformed bytes are still refused.
 */
export function checkWellFormed(message: Buffer): void {
  const r = new WireReader(message);
  while (r.next()) r.skip();
}

/** A decoder for a request that needs one capability and carries nothing worth recording. */
export function capabilityOnly(cap: Capability, op: string): (message: Buffer) => DecodedRequest {
  // Shared by every call, so frozen: nothing downstream may amend them.
  const accesses: readonly Access[] = Object.freeze([Object.freeze(capability(cap))]);
  const summary: KeySummary = Object.freeze({ op });
  return (message) => {
    checkWellFormed(message);
    return decoded(accesses, summary);
  };
}

/** Name of an enum value, or its number when it is outside the known values. */
export function enumName(names: readonly string[], value: number): string {
  return names[value] ?? String(value);
}
