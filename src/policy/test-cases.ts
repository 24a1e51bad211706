/**
 * `etcdgate policy test`: table-driven checks of a policy, written by the operator next to
 * it (config/README.md documents the format). Each case names an identity, one or more
 * requests and the expected outcome; runPolicyCases reports which cases do not hold.
 */
import type { Identity } from '../tls/identity.js';
import { CAPABILITIES, type Access, type Capability, type CompiledPolicy, type Decision } from './types.js';
import { addressBits } from '../network/cidr.js';
import { prefixEnd } from './key-range.js';
import { PolicyError, type PolicyIssue } from './policy-error.js';

/** Identity fields a case can set; anything missing is empty. */
export interface IdentityFields {
  readonly cn?: string;
  readonly o?: readonly string[];
  readonly ou?: readonly string[];
  readonly dns?: readonly string[];
  readonly uri?: readonly string[];
  readonly ip?: readonly string[];
  /** Hex; stored upper-case without colons, as identityFromDer does. */
  readonly serial?: string;
  /** SHA-256 hex; stored lower-case without colons, as identityFromDer does. */
  readonly fingerprint?: string;
}

/** Builds a complete, frozen Identity from a few fields (for cases, tests and `explain`). */
export function identityFromFields(fields: IdentityFields): Identity {
  const cn = fields.cn ?? '';
  const o = Object.freeze([...(fields.o ?? [])]);
  const ou = Object.freeze([...(fields.ou ?? [])]);
  const subject = [...(cn === '' ? [] : [`CN=${cn}`]), ...o.map((v) => `O=${v}`), ...ou.map((v) => `OU=${v}`)].join('\n');
  return Object.freeze({
    cn,
    o,
    ou,
    dns: Object.freeze([...(fields.dns ?? [])]),
    uri: Object.freeze([...(fields.uri ?? [])]),
    ip: Object.freeze([...(fields.ip ?? [])]),
    serial: (fields.serial ?? '').replaceAll(':', '').toUpperCase(),
    fingerprint: (fields.fingerprint ?? '').replaceAll(':', '').toLowerCase(),
    issuer: '',
    subject,
    notBefore: new Date(0),
    notAfter: new Date(0),
  });
}

/** One validated case. */
export interface PolicyCase {
  readonly name: string;
  readonly identity: Identity;
  readonly accesses: readonly Access[];
  readonly expect: 'allow' | 'deny';
  /** When set, the decision's reason must equal it too. */
  readonly reason?: string;
  /** The caller's IP address, for bindings with match.source (without it they do not match). */
  readonly source?: string;
}

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const IDENTITY_KEYS = ['cn', 'o', 'ou', 'dns', 'uri', 'ip', 'serial', 'fingerprint'] as const;
const REQUEST_KEYS = ['access', 'key', 'rangeEnd', 'prefix', 'fromKey', 'all', 'capability'] as const;

class CaseParser {
  readonly issues: PolicyIssue[] = [];

  report(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  onlyKeys(value: Mapping, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(value)) if (!allowed.includes(key)) this.report(`${path}.${key}`, `unknown key (allowed: ${allowed.join(', ')})`);
  }

  bytes(value: unknown, path: string): Buffer | undefined {
    if (typeof value === 'string') return Buffer.from(value, 'utf8');
    if (isMapping(value) && typeof value['base64'] === 'string' && Object.keys(value).length === 1) return Buffer.from(value['base64'], 'base64');
    this.report(path, 'must be a string or { base64: "..." }');
    return undefined;
  }

  identity(value: unknown, path: string): Identity | undefined {
    if (!isMapping(value)) {
      this.report(path, 'must be a mapping of identity fields (cn, o, ou, dns, uri, ip, serial, fingerprint)');
      return undefined;
    }
    this.onlyKeys(value, path, IDENTITY_KEYS);
    const fields: Record<string, string | string[]> = {};
    for (const key of IDENTITY_KEYS) {
      const raw = value[key];
      if (raw === undefined) continue;
      const single = key === 'cn' || key === 'serial' || key === 'fingerprint';
      if (single && typeof raw === 'string') fields[key] = raw;
      else if (!single && typeof raw === 'string') fields[key] = [raw];
      else if (!single && Array.isArray(raw) && raw.every((v) => typeof v === 'string')) fields[key] = raw as string[];
      else this.report(`${path}.${key}`, single ? 'must be a string' : 'must be a string or a list of strings');
    }
    return identityFromFields(fields as IdentityFields);
  }

  /** One request: read/write/readwrite on a key selector, a capability, or `authenticated`. */
  request(value: unknown, path: string): Access[] {
    if (!isMapping(value)) {
      this.report(path, 'must be a mapping such as { access: read, key: /a }');
      return [];
    }
    this.onlyKeys(value, path, REQUEST_KEYS);
    const access = value['access'];
    if (access === 'authenticated') return [{ kind: 'authenticated' }];
    if (access === 'capability') {
      const capability = value['capability'];
      if (typeof capability === 'string' && (CAPABILITIES as readonly string[]).includes(capability)) return [{ kind: 'capability', capability: capability as Capability }];
      this.report(`${path}.capability`, `must be one of ${CAPABILITIES.join(', ')}`);
      return [];
    }
    if (access !== 'read' && access !== 'write' && access !== 'readwrite') {
      this.report(`${path}.access`, 'must be read, write, readwrite, capability or authenticated');
      return [];
    }
    const range = this.range(value, path);
    if (range === undefined) return [];
    const kinds = access === 'readwrite' ? (['read', 'write'] as const) : ([access] as const);
    return kinds.map((kind) => ({ kind, key: range.key, rangeEnd: range.rangeEnd }));
  }

  /** The etcd `[key, rangeEnd)` a request names: key (+ rangeEnd | prefix: true | fromKey: true), prefix: "...", or all: true. */
  range(value: Mapping, path: string): { key: Buffer; rangeEnd: Buffer } | undefined {
    if (value['all'] === true) return { key: Buffer.from([0]), rangeEnd: Buffer.from([0]) };
    if (value['prefix'] !== undefined && value['prefix'] !== true) {
      const prefix = this.bytes(value['prefix'], `${path}.prefix`);
      return prefix === undefined ? undefined : { key: prefix, rangeEnd: prefixEnd(prefix) ?? Buffer.from([0]) };
    }
    if (value['key'] === undefined) {
      this.report(path, 'needs key (with optional rangeEnd, prefix: true or fromKey: true), prefix or all: true');
      return undefined;
    }
    const key = this.bytes(value['key'], `${path}.key`);
    if (key === undefined) return undefined;
    if (value['prefix'] === true) return { key, rangeEnd: prefixEnd(key) ?? Buffer.from([0]) };
    if (value['fromKey'] === true) return { key, rangeEnd: Buffer.from([0]) };
    if (value['rangeEnd'] === undefined) return { key, rangeEnd: Buffer.alloc(0) };
    const rangeEnd = this.bytes(value['rangeEnd'], `${path}.rangeEnd`);
    return rangeEnd === undefined ? undefined : { key, rangeEnd };
  }

  case(value: unknown, path: string): PolicyCase | undefined {
    if (!isMapping(value)) {
      this.report(path, 'must be a mapping { name, identity, request, expect }');
      return undefined;
    }
    this.onlyKeys(value, path, ['name', 'identity', 'source', 'request', 'expect', 'reason']);
    const source = value['source'];
    if (source !== undefined && (typeof source !== 'string' || addressBits(source) === undefined)) this.report(`${path}.source`, 'must be an IP address');
    const name = value['name'];
    if (typeof name !== 'string' || name === '') this.report(`${path}.name`, 'must be a non-empty string');
    const identity = this.identity(value['identity'], `${path}.identity`);
    const rawRequest = value['request'];
    const requests = Array.isArray(rawRequest) ? rawRequest : [rawRequest];
    if (rawRequest === undefined || requests.length === 0) this.report(`${path}.request`, 'is required');
    const accesses = requests.flatMap((r, i) => this.request(r, Array.isArray(rawRequest) ? `${path}.request[${i}]` : `${path}.request`));
    const expect = value['expect'];
    if (expect !== 'allow' && expect !== 'deny') this.report(`${path}.expect`, 'must be allow or deny');
    const reason = value['reason'];
    if (reason !== undefined && typeof reason !== 'string') this.report(`${path}.reason`, 'must be a string');
    if (typeof name !== 'string' || identity === undefined || (expect !== 'allow' && expect !== 'deny')) return undefined;
    return { name, identity, accesses, expect, ...(typeof reason === 'string' ? { reason } : {}), ...(typeof source === 'string' ? { source } : {}) };
  }
}

/** Validates a parsed cases document `{ cases: [...] }`; throws PolicyError listing every problem. */
export function parsePolicyCases(document: unknown): PolicyCase[] {
  const parser = new CaseParser();
  if (!isMapping(document) || !Array.isArray(document['cases'])) {
    throw new PolicyError([{ path: '', message: 'a cases document is a mapping with a `cases` list' }], 'policy cases');
  }
  parser.onlyKeys(document, '', ['cases', 'description']);
  const cases = document['cases'].map((c, i) => parser.case(c, `cases[${i}]`));
  if (parser.issues.length > 0) throw new PolicyError(parser.issues.map((i) => ({ ...i, path: i.path.replace(/^\./u, '') })), 'policy cases');
  return cases.filter((c): c is PolicyCase => c !== undefined);
}

function expectation(c: PolicyCase): string {
  return c.reason === undefined ? c.expect : `${c.expect} (${c.reason})`;
}

/** Runs every case of a cases document against `policy`; throws PolicyError when the document is invalid. */
export function runPolicyCases(
  policy: CompiledPolicy,
  casesDocument: unknown,
): { passed: number; failed: { name: string; expected: string; got: Decision }[] } {
  let passed = 0;
  const failed: { name: string; expected: string; got: Decision }[] = [];
  for (const c of parsePolicyCases(casesDocument)) {
    const got = policy.permissionsFor(c.identity, c.source).check(c.accesses);
    const ok = got.allowed === (c.expect === 'allow') && (c.reason === undefined || c.reason === got.reason);
    if (ok) passed++;
    else failed.push({ name: c.name, expected: expectation(c), got });
  }
  return { passed, failed };
}
