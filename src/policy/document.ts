/**
 * Validates a policy document (parsed YAML/JSON, still `unknown`) into typed form. Every
 * problem is collected with its path and reported at once in one PolicyError; unknown keys
 * are errors so that a typo never silently drops a rule. See config/README.md for the format.
 */
import { CAPABILITIES, type Capability } from './types.js';
import { parseCidr } from '../network/cidr.js';
import { MATCH_FIELDS, type MatchField } from './bindings.js';
import { isNulByte } from './key-range.js';
import { PolicyError, type PolicyIssue } from './policy-error.js';
import { hasPlaceholder, parseTemplate, type TemplatePart } from './templates.js';

/** Key bytes as written: a template (UTF-8 text, maybe with placeholders) or raw bytes. */
export type KeyBytes = { readonly parts: readonly TemplatePart[] } | { readonly bytes: Buffer };

/** What part of the key space a rule names. */
export type Selector =
  | { readonly kind: 'key'; readonly key: KeyBytes }
  | { readonly kind: 'prefix'; readonly prefix: KeyBytes }
  | { readonly kind: 'range'; readonly from: KeyBytes; readonly to: KeyBytes }
  | { readonly kind: 'all' };

export type AccessMode = 'read' | 'write' | 'readwrite';

/** One `keys:` (allow) or `deny:` entry of a role. */
export interface RuleDocument {
  /** Path in the document, e.g. `roles.tenant.keys[0]`. */
  readonly path: string;
  readonly deny: boolean;
  readonly selector: Selector;
  readonly access: AccessMode;
}

export interface RoleDocument {
  readonly name: string;
  /** Allow rules first, then deny rules, in document order. */
  readonly rules: readonly RuleDocument[];
  readonly capabilities: readonly Capability[];
}

export interface BindingDocument {
  readonly path: string;
  readonly match: ReadonlyMap<MatchField, readonly string[]>;
  /** `match.source`: networks (canonical CIDRs) the connection must come from, on top of the certificate fields. */
  readonly source?: readonly string[];
  readonly roles: readonly string[];
}

export interface PolicyDocument {
  readonly roles: ReadonlyMap<string, RoleDocument>;
  readonly bindings: readonly BindingDocument[];
}

/** Raw bytes of a key written without placeholders, or undefined when it has some. */
export function staticBytes(key: KeyBytes): Buffer | undefined {
  if ('bytes' in key) return key.bytes;
  if (hasPlaceholder(key.parts)) return undefined;
  return Buffer.from(key.parts.map((p) => ('literal' in p ? p.literal : '')).join(''), 'utf8');
}

type Mapping = Record<string, unknown>;

function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const ROLE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:-]*$/u;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/u;
const LONE_SURROGATE = /\p{Cs}/u;

/** Collects issues while walking the document. */
class Validator {
  readonly issues: PolicyIssue[] = [];

  report(path: string, message: string): void {
    this.issues.push({ path, message });
  }

  /** Reports keys of `value` outside `allowed`. */
  onlyKeys(value: Mapping, path: string, allowed: readonly string[]): void {
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) this.report(join(path, key), `unknown key (allowed: ${allowed.join(', ')})`);
    }
  }

  list(value: unknown, path: string): unknown[] | undefined {
    if (value === undefined) return [];
    if (!Array.isArray(value)) {
      this.report(path, 'must be a list');
      return undefined;
    }
    return value;
  }

  description(value: unknown, path: string): void {
    if (value !== undefined && typeof value !== 'string') this.report(path, 'must be a string');
  }

  /** Parses a key value: a string (UTF-8, may hold placeholders) or `{ base64: "..." }`. */
  keyBytes(value: unknown, path: string, what: 'key' | 'prefix' | 'from' | 'to'): KeyBytes | undefined {
    if (typeof value === 'string') {
      if (LONE_SURROGATE.test(value)) {
        this.report(path, 'contains a lone UTF-16 surrogate (not encodable as UTF-8); use { base64: ... }');
        return undefined;
      }
      const parsed = parseTemplate(value);
      if ('error' in parsed) {
        this.report(path, parsed.error);
        return undefined;
      }
      if (value === '' && (what === 'key' || what === 'prefix')) {
        this.report(path, what === 'prefix' ? 'must not be empty (use `all: true` for every key)' : 'must not be empty');
        return undefined;
      }
      const last = parsed.parts[parsed.parts.length - 1];
      if (what === 'prefix' && last !== undefined && 'placeholder' in last) {
        // "/t/{cn}" would give CN "a" every key of CN "ab": a placeholder must be closed off.
        this.report(path, `a placeholder must not end a prefix ({${last.placeholder}}=a would also cover {${last.placeholder}}=ab...); end it with a separator such as "/"`);
        return undefined;
      }
      return { parts: parsed.parts };
    }
    if (isMapping(value)) {
      this.onlyKeys(value, path, ['base64']);
      const encoded = value['base64'];
      if (typeof encoded !== 'string' || !BASE64.test(encoded)) {
        this.report(join(path, 'base64'), 'must be a base64 string');
        return undefined;
      }
      const bytes = Buffer.from(encoded, 'base64');
      if (bytes.length === 0 && (what === 'key' || what === 'prefix')) {
        this.report(join(path, 'base64'), 'must not be empty');
        return undefined;
      }
      return { bytes };
    }
    this.report(path, 'must be a string or { base64: "..." }');
    return undefined;
  }

  selector(entry: Mapping, path: string): Selector | undefined {
    const present = (['key', 'prefix', 'range', 'all'] as const).filter((k) => entry[k] !== undefined);
    if (present.length !== 1) {
      this.report(path, present.length === 0 ? 'needs one of key, prefix, range, all' : `has ${present.join(' and ')}; use exactly one selector`);
      return undefined;
    }
    switch (present[0]) {
      case 'key': {
        const key = this.keyBytes(entry['key'], join(path, 'key'), 'key');
        return key === undefined ? undefined : { kind: 'key', key };
      }
      case 'prefix': {
        const prefix = this.keyBytes(entry['prefix'], join(path, 'prefix'), 'prefix');
        return prefix === undefined ? undefined : { kind: 'prefix', prefix };
      }
      case 'all':
        if (entry['all'] !== true) {
          this.report(join(path, 'all'), 'must be true');
          return undefined;
        }
        return { kind: 'all' };
      default:
        return this.range(entry['range'], join(path, 'range'));
    }
  }

  range(value: unknown, path: string): Selector | undefined {
    if (!isMapping(value)) {
      this.report(path, 'must be a mapping { from, to }');
      return undefined;
    }
    this.onlyKeys(value, path, ['from', 'to']);
    if (value['from'] === undefined) this.report(join(path, 'from'), 'is required');
    if (value['to'] === undefined) this.report(join(path, 'to'), 'is required (use "\\0" for no upper bound)');
    if (value['from'] === undefined || value['to'] === undefined) return undefined;
    const from = this.keyBytes(value['from'], join(path, 'from'), 'from');
    const to = this.keyBytes(value['to'], join(path, 'to'), 'to');
    if (from === undefined || to === undefined) return undefined;
    const fromBytes = staticBytes(from);
    const toBytes = staticBytes(to);
    if (toBytes !== undefined && toBytes.length === 0) {
      this.report(join(path, 'to'), 'must not be empty (use "\\0" for no upper bound)');
      return undefined;
    }
    if (fromBytes !== undefined && toBytes !== undefined && !isNulByte(toBytes) && Buffer.compare(fromBytes, toBytes) >= 0) {
      this.report(path, 'from must be less than to (or to "\\0" for no upper bound)');
      return undefined;
    }
    return { kind: 'range', from, to };
  }

  access(value: unknown, path: string, required: boolean): AccessMode | undefined {
    if (value === undefined && !required) return 'readwrite';
    if (value === 'read' || value === 'write' || value === 'readwrite') return value;
    this.report(path, value === undefined ? 'is required (read, write or readwrite)' : 'must be read, write or readwrite');
    return undefined;
  }

  rule(entry: unknown, path: string, deny: boolean): RuleDocument | undefined {
    if (!isMapping(entry)) {
      this.report(path, 'must be a mapping such as { prefix: /a/, access: read }');
      return undefined;
    }
    this.onlyKeys(entry, path, ['key', 'prefix', 'range', 'all', 'access', 'description']);
    this.description(entry['description'], join(path, 'description'));
    const selector = this.selector(entry, path);
    const access = this.access(entry['access'], join(path, 'access'), !deny);
    if (selector === undefined || access === undefined) return undefined;
    return { path, deny, selector, access };
  }

  role(name: string, value: unknown, path: string): RoleDocument | undefined {
    if (!ROLE_NAME.test(name)) this.report(path, 'role names use letters, digits, ".", "_", ":" and "-"');
    if (value === null) return { name, rules: [], capabilities: [] };
    if (!isMapping(value)) {
      this.report(path, 'must be a mapping with keys, deny and/or capabilities');
      return undefined;
    }
    this.onlyKeys(value, path, ['keys', 'deny', 'capabilities', 'description']);
    this.description(value['description'], join(path, 'description'));
    const rules: RuleDocument[] = [];
    for (const [field, deny] of [['keys', false], ['deny', true]] as const) {
      const entries = this.list(value[field], join(path, field)) ?? [];
      entries.forEach((entry, i) => {
        const rule = this.rule(entry, `${join(path, field)}[${i}]`, deny);
        if (rule !== undefined) rules.push(rule);
      });
    }
    const capabilities: Capability[] = [];
    const capList = this.list(value['capabilities'], join(path, 'capabilities')) ?? [];
    capList.forEach((cap, i) => {
      if (typeof cap === 'string' && (CAPABILITIES as readonly string[]).includes(cap)) capabilities.push(cap as Capability);
      else this.report(`${join(path, 'capabilities')}[${i}]`, `must be one of ${CAPABILITIES.join(', ')}`);
    });
    return { name, rules, capabilities };
  }

  match(value: unknown, path: string): Map<MatchField, string[]> | undefined {
    if (!isMapping(value)) {
      this.report(path, value === undefined ? 'is required' : 'must be a mapping of identity fields');
      return undefined;
    }
    this.onlyKeys(value, path, [...MATCH_FIELDS, 'source']);
    const match = new Map<MatchField, string[]>();
    let ok = true;
    for (const field of MATCH_FIELDS) {
      const raw = value[field];
      if (raw === undefined) continue;
      const fieldPath = join(path, field);
      const patterns = typeof raw === 'string' ? [raw] : Array.isArray(raw) ? raw : undefined;
      if (patterns === undefined || patterns.length === 0) {
        this.report(fieldPath, 'must be a pattern or a non-empty list of patterns');
        ok = false;
        continue;
      }
      patterns.forEach((p, i) => {
        const at = typeof raw === 'string' ? fieldPath : `${fieldPath}[${i}]`;
        if (typeof p !== 'string' || p === '') {
          this.report(at, 'must be a non-empty string');
          ok = false;
        } else if ((field === 'fingerprint' || field === 'serial') && !/^[0-9a-fA-F:*]+$/u.test(p)) {
          this.report(at, 'must be hex (colons and * allowed)');
          ok = false;
        }
      });
      match.set(field, patterns.filter((p): p is string => typeof p === 'string'));
    }
    if (Object.keys(value).filter((key) => key !== 'source').length === 0) {
      const what = value['source'] === undefined ? 'an empty match would bind everyone' : 'source alone would bind every certificate from those networks';
      this.report(path, `must name at least one field of the certificate (${what}; write cn: "*" if that is meant)`);
      return undefined;
    }
    return ok && match.size > 0 ? match : undefined;
  }

  /** `match.source`: a CIDR or a non-empty list of CIDRs (src/network/cidr.ts), canonicalized. */
  source(value: unknown, path: string): string[] | undefined {
    if (value === undefined) return undefined;
    const list = typeof value === 'string' ? [value] : Array.isArray(value) ? value : undefined;
    if (list === undefined || list.length === 0) {
      this.report(path, 'must be a CIDR or a non-empty list of CIDRs (e.g. [10.0.0.0/8, "2001:db8::/32"])');
      return [];
    }
    const networks: string[] = [];
    list.forEach((entry: unknown, i) => {
      const at = typeof value === 'string' ? path : `${path}[${i}]`;
      const parsed = typeof entry === 'string' ? parseCidr(entry.trim()) : undefined;
      if (parsed === undefined) this.report(at, 'must be a CIDR string');
      else if (!parsed.ok) this.report(at, parsed.error);
      else networks.push(parsed.network.text);
    });
    return networks;
  }

  binding(entry: unknown, path: string, roleNames: ReadonlySet<string>): BindingDocument | undefined {
    if (!isMapping(entry)) {
      this.report(path, 'must be a mapping { match, roles }');
      return undefined;
    }
    this.onlyKeys(entry, path, ['match', 'roles', 'description']);
    this.description(entry['description'], join(path, 'description'));
    const match = this.match(entry['match'], join(path, 'match'));
    const source = isMapping(entry['match']) ? this.source(entry['match']['source'], join(path, 'match.source')) : undefined;
    const rolesPath = join(path, 'roles');
    const rawRoles = entry['roles'];
    const roles: string[] = [];
    if (!Array.isArray(rawRoles) || rawRoles.length === 0) {
      this.report(rolesPath, 'must be a non-empty list of role names');
    } else {
      rawRoles.forEach((r, i) => {
        if (typeof r !== 'string') this.report(`${rolesPath}[${i}]`, 'must be a role name');
        else if (!roleNames.has(r)) this.report(`${rolesPath}[${i}]`, `unknown role "${r}"`);
        else roles.push(r);
      });
    }
    if (match === undefined || roles.length === 0) return undefined;
    return { path, match, ...(source === undefined ? {} : { source }), roles };
  }
}

function join(path: string, key: string): string {
  return path === '' ? key : `${path}.${key}`;
}

/** Validates a parsed policy document; throws PolicyError listing every problem. */
export function parsePolicyDocument(document: unknown): PolicyDocument {
  const v = new Validator();
  if (!isMapping(document)) throw new PolicyError([{ path: '', message: 'the policy must be a mapping with roles and bindings' }]);
  v.onlyKeys(document, '', ['roles', 'bindings', 'description']);
  v.description(document['description'], 'description');
  const roles = new Map<string, RoleDocument>();
  const rawRoles = document['roles'];
  if (rawRoles === undefined) v.report('roles', 'is required (a mapping of role name to role)');
  else if (!isMapping(rawRoles)) v.report('roles', 'must be a mapping of role name to role');
  else {
    for (const [name, value] of Object.entries(rawRoles)) {
      const role = v.role(name, value, join('roles', name));
      if (role !== undefined) roles.set(name, role);
    }
  }
  const roleNames = new Set(isMapping(rawRoles) ? Object.keys(rawRoles) : []);
  const bindings: BindingDocument[] = [];
  const rawBindings = document['bindings'];
  if (rawBindings === undefined) v.report('bindings', 'is required (a list of { match, roles })');
  else {
    const list = v.list(rawBindings, 'bindings') ?? [];
    list.forEach((entry, i) => {
      const binding = v.binding(entry, `bindings[${i}]`, roleNames);
      if (binding !== undefined) bindings.push(binding);
    });
  }
  if (v.issues.length > 0) throw new PolicyError(v.issues);
  return { roles, bindings };
}
