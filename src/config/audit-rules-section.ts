/**
 * Parser for `audit.rules`: the ordered audit policy, in the manner of Kubernetes' audit
 * policy. Each rule names a level (`none` or `metadata`) and what it applies to: the
 * caller (identity selectors as in policy bindings, or roles), the etcd method or method
 * group, keys, and the record's outcome. Everything is checked here, once, with the path
 * of the field at fault (an unknown method, an empty list, a bad pattern); the rules are
 * compiled into matchers by src/audit/audit-rules.ts.
 */
import { METHODS } from '../etcd/methods.js';
import { MATCH_FIELDS } from '../policy/bindings.js';
import type { AuditGroupName, AuditKeySelector, AuditLevel, AuditOutcomeName, AuditRuleConfig } from './types.js';
import type { Reader } from './read.js';
import { at, describe, index, isAbsent, isMapping } from './read.js';

const RULE_KEYS = ['level', 'match', 'roles', 'methods', 'groups', 'keys', 'outcomes', 'description'];
const LEVELS: readonly AuditLevel[] = ['none', 'metadata'];
const GROUPS: readonly AuditGroupName[] = ['read', 'write', 'admin', 'auth'];
const OUTCOMES: readonly AuditOutcomeName[] = ['success', 'failure', 'unknown'];

/** etcd's method names (unique across services), as rules name them. */
const METHOD_NAMES: ReadonlySet<string> = new Set([...METHODS.values()].map((spec) => spec.method));

/** Reads `audit.rules` (optional; absent is no rules). */
export function readAuditRules(reader: Reader, value: unknown, fieldPath: string): AuditRuleConfig[] {
  if (isAbsent(value)) return [];
  if (!Array.isArray(value)) {
    reader.report(fieldPath, `must be a list of rules, got ${describe(value)}`);
    return [];
  }
  const rules: AuditRuleConfig[] = [];
  value.forEach((entry: unknown, i) => {
    const rule = readRule(reader, entry, index(fieldPath, i));
    if (rule !== undefined) rules.push(rule);
  });
  return rules;
}

function readRule(reader: Reader, value: unknown, fieldPath: string): AuditRuleConfig | undefined {
  if (!isMapping(value)) {
    reader.report(fieldPath, `must be a mapping (level, and what it applies to), got ${describe(value)}`);
    return undefined;
  }
  const raw = reader.mapping(value, fieldPath, RULE_KEYS);
  if (isAbsent(raw['level'])) reader.report(at(fieldPath, 'level'), `is required (one of: ${LEVELS.join(', ')})`);
  const level = reader.choice(raw['level'], at(fieldPath, 'level'), LEVELS, 'metadata');
  if (!isAbsent(raw['description']) && typeof raw['description'] !== 'string') reader.report(at(fieldPath, 'description'), 'must be a string');

  const rule: { -readonly [K in keyof AuditRuleConfig]: AuditRuleConfig[K] } = { level };
  const match = readMatch(reader, raw['match'], at(fieldPath, 'match'));
  if (match !== undefined) rule.match = match;
  const roles = stringList(reader, raw['roles'], at(fieldPath, 'roles'), (role, path) => {
    if (!/^[A-Za-z0-9._:-]+$/u.test(role)) reader.report(path, 'role names use letters, digits, ".", "_", ":" and "-"');
  });
  if (roles !== undefined) rule.roles = roles;
  const methods = stringList(reader, raw['methods'], at(fieldPath, 'methods'), (method, path) => {
    if (!METHOD_NAMES.has(method)) reader.report(path, `unknown etcd method "${method.slice(0, 64)}" (methods are named as in etcd's API, e.g. Range, Txn, LeaseKeepAlive)`);
  });
  if (methods !== undefined) rule.methods = methods;
  const groups = choiceList(reader, raw['groups'], at(fieldPath, 'groups'), GROUPS);
  if (groups !== undefined) rule.groups = groups;
  const keys = readKeys(reader, raw['keys'], at(fieldPath, 'keys'));
  if (keys !== undefined) rule.keys = keys;
  const outcomes = choiceList(reader, raw['outcomes'], at(fieldPath, 'outcomes'), OUTCOMES);
  if (outcomes !== undefined) rule.outcomes = outcomes;
  return rule;
}

/** A non-empty list of non-empty strings (a single string is a list of one); undefined when absent or wrong. */
function stringList(reader: Reader, value: unknown, fieldPath: string, check?: (item: string, path: string) => void): string[] | undefined {
  if (isAbsent(value)) return undefined;
  const single = typeof value === 'string';
  const items: unknown[] | undefined = single ? [value] : Array.isArray(value) ? value : undefined;
  if (items === undefined || items.length === 0) {
    reader.report(fieldPath, 'must be a non-empty list');
    return undefined;
  }
  const out: string[] = [];
  items.forEach((item, i) => {
    const path = single ? fieldPath : index(fieldPath, i);
    if (typeof item !== 'string' || item === '') reader.report(path, 'must be a non-empty string');
    else {
      check?.(item, path);
      out.push(item);
    }
  });
  return out;
}

function choiceList<T extends string>(reader: Reader, value: unknown, fieldPath: string, choices: readonly T[]): T[] | undefined {
  const items = stringList(reader, value, fieldPath);
  if (items === undefined) return undefined;
  const out: T[] = [];
  items.forEach((item, i) => {
    const found = choices.find((c) => c === item);
    if (found === undefined) reader.report(typeof value === 'string' ? fieldPath : index(fieldPath, i), `must be one of: ${choices.join(', ')}`);
    else out.push(found);
  });
  return out;
}

/** `match:` as in a policy binding: identity field -> glob pattern(s). */
function readMatch(reader: Reader, value: unknown, fieldPath: string): Record<string, string[]> | undefined {
  if (isAbsent(value)) return undefined;
  const raw = reader.mapping(value, fieldPath, MATCH_FIELDS);
  if (Object.keys(raw).length === 0) {
    reader.report(fieldPath, `must name at least one of: ${MATCH_FIELDS.join(', ')} (leave match out to apply to everyone)`);
    return undefined;
  }
  const match: Record<string, string[]> = {};
  for (const field of MATCH_FIELDS) {
    const patterns = stringList(reader, raw[field], at(fieldPath, field), (pattern, path) => {
      if ((field === 'fingerprint' || field === 'serial') && !/^[0-9a-fA-F:*]+$/u.test(pattern)) reader.report(path, 'must be hex (colons and * allowed)');
    });
    if (patterns !== undefined) match[field] = patterns;
  }
  return match;
}

/** `keys:` a non-empty list of `{ key: K }` or `{ prefix: P }`. */
function readKeys(reader: Reader, value: unknown, fieldPath: string): AuditKeySelector[] | undefined {
  if (isAbsent(value)) return undefined;
  if (!Array.isArray(value) || value.length === 0) {
    reader.report(fieldPath, 'must be a non-empty list of { key: K } or { prefix: P }');
    return undefined;
  }
  const out: AuditKeySelector[] = [];
  value.forEach((entry: unknown, i) => {
    const path = index(fieldPath, i);
    if (!isMapping(entry)) {
      reader.report(path, 'must be { key: K } or { prefix: P }');
      return;
    }
    const raw = reader.mapping(entry, path, ['key', 'prefix']);
    const given = Object.keys(raw).filter((k) => k === 'key' || k === 'prefix');
    if (given.length !== 1) {
      reader.report(path, 'must name exactly one of key, prefix');
      return;
    }
    const name = given[0] as 'key' | 'prefix';
    const text = raw[name];
    if (typeof text !== 'string' || text === '') {
      reader.report(at(path, name), 'must be a non-empty string');
      return;
    }
    out.push(name === 'key' ? { key: text } : { prefix: text });
  });
  return out.length > 0 ? out : undefined;
}
