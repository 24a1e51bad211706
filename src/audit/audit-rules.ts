/**
 * The audit policy: `audit.rules` compiled once at start into matchers, asked per record
 * which level applies. Rules are tried in order and the first that matches decides, as in
 * Kubernetes' audit policy; a record no rule matches takes its group's `audit.level`.
 * Denied calls never reach this: the auditor writes every denial, whatever the rules say.
 *
 * What a rule's fields mean (every field given must hold; a list holds when any entry does):
 * - `match`: the caller's certificate, with a policy binding's selectors and globs
 *   (src/policy/bindings.ts); `roles`: the caller holds one of them.
 * - `methods`, `groups`: the etcd method, or its group (read, write, admin, auth).
 * - `keys`: what the request touches (every key and range of it, Txn compares and both
 *   branches included). For a `none` rule every one of them must lie inside the listed
 *   keys and prefixes, so a request that also touches something else is still recorded;
 *   for a `metadata` rule one overlapping is enough, so a rule that keeps a prefix keeps
 *   every request reaching into it. Requests that touch no key never match a rule with keys.
 * - `outcomes`: the record's event.outcome.
 *
 * Per record: the identity part is decided once per connection (identities are frozen
 * per connection, cached in a WeakMap), methods are a set lookup, keys a walk of the
 * request summary with byte comparisons, only for rules that name keys.
 */
import type { AuditGroupName, AuditKeySelector, AuditLevel, AuditOutcomeName, AuditRuleConfig } from '../config/types.js';
import { compileMatcher, type IdentityMatcher, type MatchField } from '../policy/bindings.js';
import { compareEnds, prefixEnd, requestInterval, singleKeyInterval, type KeyInterval } from '../policy/key-range.js';
import type { Identity } from '../tls/identity.js';
import type { CallEvent, KeySummary } from './types.js';

/** The group a call's level is set by (src/audit/auditor.ts auditGroup). */
type AuditGroup = AuditGroupName;

/** Decides the level of a record, or undefined when no rule matches it. */
export type AuditRules = (event: CallEvent, group: AuditGroup, outcome: AuditOutcomeName) => AuditLevel | undefined;

/** A rule with every field compiled; absent fields always hold. */
interface CompiledRule {
  readonly level: AuditLevel;
  readonly identity?: IdentityMatcher;
  readonly roles?: ReadonlySet<string>;
  readonly methods?: ReadonlySet<string>;
  readonly groups?: ReadonlySet<AuditGroup>;
  readonly keys?: readonly KeyInterval[];
  readonly outcomes?: ReadonlySet<AuditOutcomeName>;
}

function selectorInterval(selector: AuditKeySelector): KeyInterval {
  if ('key' in selector) return singleKeyInterval(Buffer.from(selector.key, 'utf8'));
  const from = Buffer.from(selector.prefix, 'utf8');
  return { from, to: prefixEnd(from) };
}

/** Whether `inner` lies inside `outer`. */
function within(inner: KeyInterval, outer: KeyInterval): boolean {
  return Buffer.compare(inner.from, outer.from) >= 0 && compareEnds(inner.to, outer.to) <= 0;
}

/** Whether two intervals share a key. */
function overlaps(a: KeyInterval, b: KeyInterval): boolean {
  // [a.from, a.to) and [b.from, b.to) meet when each starts before the other ends.
  const aStartsBeforeBEnds = b.to === null || Buffer.compare(a.from, b.to) < 0;
  const bStartsBeforeAEnds = a.to === null || Buffer.compare(b.from, a.to) < 0;
  return aStartsBeforeBEnds && bStartsBeforeAEnds;
}

const EMPTY = Buffer.alloc(0);

/**
 * Calls `visit` with the interval of every key or range the request summary names
 * (compares and both branches of a Txn, nested ones too); stops when it returns false.
 * Returns whether any key was visited and every visit returned true.
 */
function everyInterval(summary: KeySummary, visit: (interval: KeyInterval) => boolean): { any: boolean; all: boolean } {
  let any = false;
  const walk = (node: KeySummary, depth: number): boolean => {
    if (depth > 80) return false; // deeper than any decoder produces: treat as not matching
    if (node.key !== undefined || node.rangeEnd !== undefined) {
      any = true;
      if (!visit(requestInterval(node.key ?? EMPTY, node.rangeEnd ?? EMPTY))) return false;
    }
    for (const branch of [node.compare, node.success, node.failure]) {
      if (branch === undefined) continue;
      for (const child of branch) if (!walk(child, depth + 1)) return false;
    }
    return true;
  };
  const all = walk(summary, 0);
  return { any, all };
}

function keysMatch(rule: CompiledRule, keys: readonly KeyInterval[], summary: KeySummary): boolean {
  if (rule.level === 'none') {
    // Dropping: everything the request touches must be inside the rule's keys.
    const { any, all } = everyInterval(summary, (interval) => keys.some((k) => within(interval, k)));
    return any && all;
  }
  // Keeping: one key reaching into the rule's keys is enough.
  let hit = false;
  everyInterval(summary, (interval) => {
    hit = keys.some((k) => overlaps(interval, k));
    return !hit;
  });
  return hit;
}

function compileRule(rule: AuditRuleConfig): CompiledRule {
  const compiled: { -readonly [K in keyof CompiledRule]: CompiledRule[K] } = { level: rule.level };
  if (rule.match !== undefined) compiled.identity = compileMatcher(new Map(Object.entries(rule.match) as [MatchField, readonly string[]][]));
  if (rule.roles !== undefined) compiled.roles = new Set(rule.roles);
  if (rule.methods !== undefined) compiled.methods = new Set(rule.methods);
  if (rule.groups !== undefined) compiled.groups = new Set(rule.groups);
  if (rule.keys !== undefined) compiled.keys = rule.keys.map(selectorInterval);
  if (rule.outcomes !== undefined) compiled.outcomes = new Set(rule.outcomes);
  return compiled;
}

/** Compiles the rules; undefined when there are none (the auditor then skips the step). */
export function compileAuditRules(rules: readonly AuditRuleConfig[] | undefined): AuditRules | undefined {
  if (rules === undefined || rules.length === 0) return undefined;
  const compiled = rules.map(compileRule);
  // Per identity, per rule: does its `match` hold? Identities are frozen per connection.
  const identityHits = new WeakMap<Identity, boolean[]>();
  const identityHolds = (identity: Identity, i: number, matcher: IdentityMatcher): boolean => {
    let hits = identityHits.get(identity);
    if (hits === undefined) {
      hits = compiled.map((rule) => rule.identity === undefined || rule.identity(identity));
      identityHits.set(identity, hits);
    }
    return hits[i] ?? matcher(identity);
  };
  return (event, group, outcome) => {
    for (let i = 0; i < compiled.length; i += 1) {
      const rule = compiled[i] as CompiledRule;
      if (rule.methods !== undefined && !rule.methods.has(event.method)) continue;
      if (rule.groups !== undefined && !rule.groups.has(group)) continue;
      if (rule.outcomes !== undefined && !rule.outcomes.has(outcome)) continue;
      if (rule.roles !== undefined && !event.roles.some((role) => rule.roles?.has(role) === true)) continue;
      if (rule.identity !== undefined && !identityHolds(event.peer.identity, i, rule.identity)) continue;
      if (rule.keys !== undefined && !keysMatch(rule, rule.keys, event.request)) continue;
      return rule.level;
    }
    return undefined;
  };
}
