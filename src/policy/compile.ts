/**
 * Compiles a validated policy document into a CompiledPolicy. All the work that does not
 * depend on the caller (validation, binding matchers, rules without placeholders) is done
 * once here; permissionsFor(identity) then resolves bindings, fills templates and builds
 * per access kind (read, write) an IntervalSet of allow rules and one of deny rules, so a
 * check is a couple of binary searches that allocate nothing.
 *
 * Semantics (docs/authorization.md): a single key is allowed when some allow rule contains
 * it; a range only when the union of allow rules covers it with no gap. Deny rules hold for
 * the whole identity (across all its roles) and beat every allow: an access touching any
 * denied key is denied whole. Before any of that, every write touching etcdgate's reserved
 * prefix (./reserved.ts) is denied, whatever the roles say.
 */
import { createHash } from 'node:crypto';
import { parse as parseYaml, YAMLParseError } from 'yaml';
import type { Identity } from '../tls/identity.js';
import { CAPABILITIES, type Access, type Capability, type CompiledPolicy, type Decision, type Permissions } from './types.js';
import { compileMatcher, type IdentityMatcher } from './bindings.js';
import { parsePolicyDocument, type AccessMode, type KeyBytes, type PolicyDocument, type RuleDocument } from './document.js';
import { IntervalSet, type SourcedInterval } from './interval-set.js';
import { ALL_KEYS, formatKey, isNulByte, prefixEnd, requestInterval, singleKeyInterval, type KeyInterval } from './key-range.js';
import { PolicyError } from './policy-error.js';
import { RESERVED_DENIAL, touchesReserved } from './reserved.js';
import { assignments, fillTemplate, type Placeholder } from './templates.js';

/** What granted or denied an access: the decision to return and the rule's document path. */
export interface Grant {
  readonly decision: Decision;
  /** Path of the rule in the policy, e.g. `roles.tenant.keys[0]`. */
  readonly path: string;
}

const EMPTY_ALLOWED: Decision = Object.freeze({ allowed: true, reason: 'granted' });
const NO_BINDING: Decision = Object.freeze({ allowed: false, reason: 'no binding' });
const NOT_GRANTED: Decision = Object.freeze({ allowed: false, reason: 'not granted' });
const NOT_COVERED: Decision = Object.freeze({ allowed: false, reason: 'range not fully covered' });
const CAPABILITY_NOT_GRANTED: Decision = Object.freeze({ allowed: false, reason: 'capability not granted' });
const AUTHENTICATED: Decision = Object.freeze({ allowed: true, reason: 'granted', rule: 'authenticated' });

function renderTemplate(key: KeyBytes): string {
  if ('bytes' in key) return formatKey(key.bytes);
  return key.parts.map((p) => ('literal' in p ? formatKey(Buffer.from(p.literal, 'utf8')) : `{${p.placeholder}}`)).join('');
}

function placeholdersOf(rule: RuleDocument): Placeholder[] {
  const keys: KeyBytes[] = [];
  const s = rule.selector;
  if (s.kind === 'key') keys.push(s.key);
  else if (s.kind === 'prefix') keys.push(s.prefix);
  else if (s.kind === 'range') keys.push(s.from, s.to);
  const names = new Set<Placeholder>();
  for (const k of keys) if ('parts' in k) for (const p of k.parts) if ('placeholder' in p) names.add(p.placeholder);
  return [...names];
}

function fill(key: KeyBytes, values: ReadonlyMap<Placeholder, string>): Buffer {
  return 'bytes' in key ? key.bytes : Buffer.from(fillTemplate(key.parts, values), 'utf8');
}

/** The interval and human text of a rule's selector for one assignment; undefined if empty. */
function selectorInstance(rule: RuleDocument, values: ReadonlyMap<Placeholder, string>): { interval: KeyInterval; text: string } | undefined {
  const s = rule.selector;
  switch (s.kind) {
    case 'all':
      return { interval: ALL_KEYS, text: 'all keys' };
    case 'key': {
      const key = fill(s.key, values);
      return { interval: singleKeyInterval(key), text: `key ${formatKey(key)}` };
    }
    case 'prefix': {
      const prefix = fill(s.prefix, values);
      return { interval: { from: prefix, to: prefixEnd(prefix) }, text: `prefix ${formatKey(prefix)}` };
    }
    case 'range': {
      const from = fill(s.from, values);
      const to = fill(s.to, values);
      if (!isNulByte(to) && Buffer.compare(from, to) >= 0) return undefined;
      const interval = requestInterval(from, to);
      return { interval, text: `range [${formatKey(from)}, ${isNulByte(to) ? '+inf' : formatKey(to)})` };
    }
  }
}

function ruleText(deny: boolean, selectorText: string, access: AccessMode): string {
  if (!deny) return `${selectorText} ${access}`;
  return access === 'readwrite' ? `deny ${selectorText}` : `deny ${selectorText} ${access}`;
}

/** A rule ready to be instantiated for an identity. */
class CompiledRule {
  readonly role: string;
  readonly doc: RuleDocument;
  readonly #placeholders: Placeholder[];
  /** Instances of a rule without placeholders, built once. */
  readonly #static: SourcedInterval<Grant>[] | undefined;

  constructor(role: string, doc: RuleDocument) {
    this.role = role;
    this.doc = doc;
    this.#placeholders = placeholdersOf(doc);
    this.#static = this.#placeholders.length === 0 ? this.#build(new Map()) : undefined;
  }

  #grant(text: string): Grant {
    const decision: Decision = Object.freeze({
      allowed: !this.doc.deny,
      role: this.role,
      rule: text,
      reason: this.doc.deny ? 'denied by rule' : 'granted',
    });
    return Object.freeze({ decision, path: this.doc.path });
  }

  #build(values: ReadonlyMap<Placeholder, string>): SourcedInterval<Grant>[] {
    const instance = selectorInstance(this.doc, values);
    if (instance === undefined) return this.doc.deny ? this.#failClosed() : [];
    return [{ interval: instance.interval, source: this.#grant(ruleText(this.doc.deny, instance.text, this.doc.access)) }];
  }

  /** A deny rule that cannot be filled for this identity denies every key: it must never widen access. */
  #failClosed(): SourcedInterval<Grant>[] {
    const s = this.doc.selector;
    const written = s.kind === 'key' ? `key ${renderTemplate(s.key)}` : s.kind === 'prefix' ? `prefix ${renderTemplate(s.prefix)}` : s.kind === 'range' ? `range [${renderTemplate(s.from)}, ${renderTemplate(s.to)})` : 'all keys';
    return [{ interval: ALL_KEYS, source: this.#grant(`${ruleText(true, written, this.doc.access)} (identity value unusable: every key)`) }];
  }

  /** The intervals this rule contributes for `identity`. */
  instances(identity: Identity): SourcedInterval<Grant>[] {
    if (this.#static !== undefined) return this.#static;
    const { assignments: all, skipped } = assignments(identity, this.#placeholders);
    const out = all.flatMap((values) => this.#build(values));
    if (skipped && this.doc.deny) out.push(...this.#failClosed());
    return out;
  }
}

interface CompiledRole {
  readonly name: string;
  readonly rules: readonly CompiledRule[];
  readonly capabilities: ReadonlySet<Capability>;
}

interface CompiledBinding {
  readonly path: string;
  /** The binding's name, else its path: what metrics call it. */
  readonly label: string;
  readonly matches: IdentityMatcher;
  readonly roles: readonly string[];
}

/** Per access kind, the allow and deny sets of one identity. */
interface KindSets {
  readonly allow: IntervalSet<Grant>;
  readonly deny: IntervalSet<Grant>;
}

/** The compiled permissions of one identity. Immutable; safe to cache and share. */
export class IdentityPermissions implements Permissions {
  readonly roles: readonly string[];
  /** Paths of the bindings that matched (for explanations). */
  readonly bindings: readonly string[];
  readonly binding?: string;
  readonly #read: KindSets;
  readonly #write: KindSets;
  readonly #capabilities: ReadonlyMap<Capability, Decision>;

  constructor(roles: readonly CompiledRole[], bindings: readonly string[], identity: Identity, binding?: string) {
    this.roles = Object.freeze(roles.map((r) => r.name));
    this.bindings = Object.freeze([...bindings]);
    if (binding !== undefined) this.binding = binding;
    const entries = { read: { allow: [], deny: [] }, write: { allow: [], deny: [] } } as Record<'read' | 'write', { allow: SourcedInterval<Grant>[]; deny: SourcedInterval<Grant>[] }>;
    for (const role of roles) {
      for (const rule of role.rules) {
        const instances = rule.instances(identity);
        const side = rule.doc.deny ? 'deny' : 'allow';
        if (rule.doc.access !== 'write') entries.read[side].push(...instances);
        if (rule.doc.access !== 'read') entries.write[side].push(...instances);
      }
    }
    this.#read = { allow: new IntervalSet(entries.read.allow), deny: new IntervalSet(entries.read.deny) };
    this.#write = { allow: new IntervalSet(entries.write.allow), deny: new IntervalSet(entries.write.deny) };
    const capabilities = new Map<Capability, Decision>();
    // Direct grants first so a decision names `capability lease` rather than `admin` when both hold.
    for (const viaAdmin of [false, true]) {
      for (const role of roles) {
        if (viaAdmin && !role.capabilities.has('admin')) continue;
        const caps = viaAdmin ? CAPABILITIES : [...role.capabilities];
        for (const cap of caps) {
          if (capabilities.has(cap)) continue;
          const rule = viaAdmin && cap !== 'admin' ? `capability admin (includes ${cap})` : `capability ${cap}`;
          capabilities.set(cap, Object.freeze({ allowed: true, role: role.name, rule, reason: 'granted' }));
        }
      }
    }
    this.#capabilities = capabilities;
  }

  /** Decides one access. */
  checkOne(access: Access): Decision {
    if (this.roles.length === 0) return NO_BINDING;
    switch (access.kind) {
      case 'authenticated':
        return AUTHENTICATED;
      case 'capability':
        return this.#capabilities.get(access.capability) ?? CAPABILITY_NOT_GRANTED;
      default: {
        // Built in, before any role: no client writes under etcdgate's reserved prefix (src/policy/reserved.ts).
        if (access.kind === 'write' && touchesReserved(access.key, access.rangeEnd)) return RESERVED_DENIAL;
        const sets = access.kind === 'read' ? this.#read : this.#write;
        if (access.rangeEnd.length === 0) {
          // Hot path: a single key is two binary searches and no allocation.
          const denied = sets.deny.lookup(access.key);
          if (denied !== undefined) return denied.decision;
          return sets.allow.lookup(access.key)?.decision ?? NOT_GRANTED;
        }
        const interval = requestInterval(access.key, access.rangeEnd);
        const denied = sets.deny.intersecting(interval);
        if (denied !== undefined) return denied.decision;
        const coverage = sets.allow.coverage(interval);
        if (coverage.kind === 'full') return coverage.source.decision;
        return coverage.kind === 'partial' ? NOT_COVERED : NOT_GRANTED;
      }
    }
  }

  check(accesses: readonly Access[]): Decision {
    // An identity no binding matches is refused every call, even one that touches
    // nothing (an empty Txn would still tell it the cluster ID and revision).
    if (this.roles.length === 0) return NO_BINDING;
    let last = EMPTY_ALLOWED;
    for (const access of accesses) {
      const decision = this.checkOne(access);
      // A denial names the access it stopped at (one allocation, on denials only).
      if (!decision.allowed) return { ...decision, refused: access };
      last = decision;
    }
    return last;
  }

  /** Human-readable summary of the effective grants (for `explain`). */
  describe(): string[] {
    const lines: string[] = [];
    for (const [kind, sets] of [['read', this.#read], ['write', this.#write]] as const) {
      for (const [side, set] of [['allow', sets.allow], ['deny', sets.deny]] as const) {
        for (const { interval, source } of set.segments()) {
          const to = interval.to === null ? '+inf' : formatKey(interval.to);
          lines.push(`${kind} ${side} [${formatKey(interval.from)}, ${to}) by role ${source.decision.role ?? '?'} (${source.path}: ${source.decision.rule ?? ''})`);
        }
      }
    }
    for (const [cap, decision] of this.#capabilities) lines.push(`capability ${cap} by role ${decision.role ?? '?'}`);
    return lines;
  }
}

/** The compiled policy: immutable, shared by every connection until a reload replaces it. */
export class PolicyEngine implements CompiledPolicy {
  readonly version: string;
  readonly ruleCount: number;
  /** Whether some binding has `match.source` (permissions then depend on the caller's address too). */
  readonly usesSource: boolean;
  readonly #roles: ReadonlyMap<string, CompiledRole>;
  readonly #bindings: readonly CompiledBinding[];

  constructor(document: PolicyDocument, version: string) {
    this.version = version;
    const roles = new Map<string, CompiledRole>();
    let ruleCount = 0;
    for (const role of document.roles.values()) {
      ruleCount += role.rules.length;
      roles.set(role.name, {
        name: role.name,
        rules: role.rules.map((r) => new CompiledRule(role.name, r)),
        capabilities: new Set(role.capabilities),
      });
    }
    this.ruleCount = ruleCount;
    this.#roles = roles;
    this.#bindings = document.bindings.map((b) => ({ path: b.path, label: b.name ?? b.path, matches: compileMatcher(b.match, b.source), roles: b.roles }));
    this.usesSource = document.bindings.some((b) => b.source !== undefined);
  }

  permissionsFor(identity: Identity, source?: string): IdentityPermissions {
    const names = new Set<string>();
    const bindings: string[] = [];
    let first: string | undefined;
    for (const binding of this.#bindings) {
      if (!binding.matches(identity, source)) continue;
      bindings.push(binding.path);
      first ??= binding.label;
      for (const role of binding.roles) names.add(role);
    }
    const roles = [...names].sort().map((n) => this.#roles.get(n)).filter((r): r is CompiledRole => r !== undefined);
    return new IdentityPermissions(roles, bindings, identity, first);
  }
}

/** JSON with object keys sorted, so equal documents hash equally whatever their key order. */
function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) => {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
    const record = v as Record<string, unknown>;
    return Object.fromEntries(Object.keys(record).sort().map((k) => [k, record[k]]));
  });
}

/** First 12 hex characters of the SHA-256 of the text. */
function shortHash(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex').slice(0, 12);
}

/**
 * Validates and compiles a parsed policy document. `sourceText` (the file's text) names the
 * version; without it the version hashes a canonical JSON of the document.
 * Throws PolicyError listing every problem.
 */
export function compilePolicy(document: unknown, sourceText?: string): PolicyEngine {
  const parsed = parsePolicyDocument(document);
  return new PolicyEngine(parsed, shortHash(sourceText ?? canonicalJson(document) ?? ''));
}

/** Parses YAML (or JSON) policy text and compiles it; YAML syntax errors become a PolicyError. */
export function compilePolicyText(text: string): PolicyEngine {
  let document: unknown;
  try {
    document = parseYaml(text, { prettyErrors: true });
  } catch (error: unknown) {
    if (error instanceof YAMLParseError) throw new PolicyError([{ path: '', message: `YAML: ${error.message}` }]);
    throw error;
  }
  return compilePolicy(document, text);
}
