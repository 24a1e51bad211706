/**
 * Field readers used by the section parsers. Each reader checks one value, records a
 * problem against its path when the value is wrong, and still returns a placeholder of
 * the right type so validation carries on and every problem in the document is found.
 * Placeholders never escape: parseConfig throws if any problem was recorded.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { ConfigIssue } from './errors.js';

/** Largest delay Node timers honour; larger values silently fire after 1 ms. */
export const MAX_TIMER_MS = 2_147_483_647;

/** Stored in Config for a message-size limit that is unlimited (gRPC's usual -1). */
export const UNLIMITED_BYTES = -1;

/** The gRPC length prefix is 32 bits, so no single message can be larger. */
export const MAX_MESSAGE_BYTES = 4_294_967_295;

/** A plain (non-array) object as produced by YAML mappings. */
export type Mapping = Readonly<Record<string, unknown>>;

/** `server.tls` + `cert` -> `server.tls.cert`; the root path is "". */
export function at(parent: string, key: string): string {
  return parent === '' ? key : `${parent}.${key}`;
}

/** `upstream.endpoints` + 1 -> `upstream.endpoints[1]`. */
export function index(parent: string, i: number): string {
  return `${parent}[${i}]`;
}

/** Short description of a value's YAML type for messages (never the value itself). */
export function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  switch (typeof value) {
    case 'string':
      return 'a string';
    case 'number':
      return 'a number';
    case 'boolean':
      return 'a boolean';
    case 'object':
      return 'a mapping';
    default:
      return `a ${typeof value}`;
  }
}

/** True for a YAML mapping (a plain object, not a list). */
export function isMapping(value: unknown): value is Mapping {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Treats YAML null (`key:` with nothing after it) like an absent key. */
export function isAbsent(value: unknown): value is null | undefined {
  return value === null || value === undefined;
}

/** Options for integer fields; `fallback` makes the field optional. */
export interface IntegerRule {
  readonly min: number;
  readonly max: number;
  readonly fallback?: number;
}

/**
 * Collects issues while reading one document. File checks use `baseDir` to resolve
 * relative paths, so a config means the same thing whatever the working directory.
 */
export class Reader {
  readonly issues: ConfigIssue[] = [];

  constructor(readonly baseDir: string) {}

  /** Records one problem at `fieldPath`. */
  report(fieldPath: string, message: string): void {
    this.issues.push({ path: fieldPath, message });
  }

  /**
   * Reads a mapping whose keys must come from `allowed`; every other key is reported so
   * a misspelt option is an error instead of a silently ignored line. Returns an empty
   * mapping (after reporting) when the value is not a mapping at all.
   */
  mapping(value: unknown, fieldPath: string, allowed: readonly string[]): Mapping {
    if (!isMapping(value)) {
      this.report(fieldPath, `must be a mapping, got ${describe(value)}`);
      return {};
    }
    for (const key of Object.keys(value)) {
      if (!allowed.includes(key)) {
        const hint = closest(key, allowed);
        this.report(
          at(fieldPath, key),
          hint === undefined
            ? `unknown key (expected one of: ${allowed.join(', ')})`
            : `unknown key (did you mean "${hint}"?)`,
        );
      }
    }
    return value;
  }

  /**
   * A required section: reports once when it is absent (rather than once per missing
   * field inside it) and returns undefined, so the caller can skip its fields.
   */
  requiredMapping(value: unknown, fieldPath: string, allowed: readonly string[]): Mapping | undefined {
    if (isAbsent(value)) {
      this.report(fieldPath, 'is required');
      return undefined;
    }
    if (!isMapping(value)) {
      this.report(fieldPath, `must be a mapping, got ${describe(value)}`);
      return undefined;
    }
    return this.mapping(value, fieldPath, allowed);
  }

  /** Like mapping(), but an absent section reads as empty so its defaults apply. */
  optionalMapping(value: unknown, fieldPath: string, allowed: readonly string[]): Mapping {
    return isAbsent(value) ? {} : this.mapping(value, fieldPath, allowed);
  }

  /** A required non-empty string. */
  requiredString(value: unknown, fieldPath: string): string {
    if (isAbsent(value)) {
      this.report(fieldPath, 'is required');
      return '';
    }
    return this.nonEmptyString(value, fieldPath) ?? '';
  }

  /** An optional non-empty string; undefined when absent or wrong. */
  optionalString(value: unknown, fieldPath: string): string | undefined {
    return isAbsent(value) ? undefined : this.nonEmptyString(value, fieldPath);
  }

  private nonEmptyString(value: unknown, fieldPath: string): string | undefined {
    if (typeof value !== 'string') {
      this.report(fieldPath, `must be a string, got ${describe(value)}`);
      return undefined;
    }
    if (value.trim() === '') {
      this.report(fieldPath, 'must not be empty');
      return undefined;
    }
    return value;
  }

  /** An integer within [min, max]; absent means `fallback`, or an issue when there is none. */
  integer(value: unknown, fieldPath: string, rule: IntegerRule): number {
    const placeholder = rule.fallback ?? rule.min;
    if (isAbsent(value)) {
      if (rule.fallback === undefined) this.report(fieldPath, 'is required');
      return placeholder;
    }
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < rule.min || value > rule.max) {
      this.report(fieldPath, `must be an integer from ${rule.min} to ${rule.max}, got ${describeNumber(value)}`);
      return placeholder;
    }
    return value;
  }

  /** true or false; absent means `fallback`. */
  boolean(value: unknown, fieldPath: string, fallback: boolean): boolean {
    if (isAbsent(value)) return fallback;
    if (typeof value === 'boolean') return value;
    this.report(fieldPath, `must be true or false, got ${describe(value)}`);
    return fallback;
  }

  /** One of a fixed set of strings; absent means `fallback`. */
  choice<T extends string>(value: unknown, fieldPath: string, choices: readonly T[], fallback: T): T {
    if (isAbsent(value)) return fallback;
    if (typeof value === 'string') {
      const found = choices.find((c) => c === value);
      if (found !== undefined) return found;
    }
    this.report(fieldPath, `must be one of: ${choices.join(', ')}`);
    return fallback;
  }

  /**
   * A file that must exist and be readable now; returns its absolute path. Checking at
   * load time turns a typo into a startup error naming the file, not a TLS failure later.
   */
  requiredFile(value: unknown, fieldPath: string): string {
    if (isAbsent(value)) {
      this.report(fieldPath, 'is required');
      return '';
    }
    return this.optionalFile(value, fieldPath) ?? '';
  }

  /** Like requiredFile(), but absent reads as undefined. */
  optionalFile(value: unknown, fieldPath: string): string | undefined {
    const given = this.optionalString(value, fieldPath);
    if (given === undefined) return undefined;
    const absolute = this.resolve(given);
    const problem = readableFileProblem(absolute);
    if (problem !== undefined) this.report(fieldPath, problem);
    return absolute;
  }

  /**
   * A message-size limit in bytes. With `unlimited`, the field defaults to (and accepts
   * the word) `unlimited`, stored as UNLIMITED_BYTES.
   */
  byteLimit(value: unknown, fieldPath: string, rule: { readonly fallback: number; readonly unlimited: boolean }): number {
    if (rule.unlimited && value === 'unlimited') return UNLIMITED_BYTES;
    if (typeof value === 'string') {
      this.report(fieldPath, rule.unlimited ? 'must be a number of bytes or "unlimited"' : 'must be a number of bytes');
      return rule.fallback;
    }
    return this.integer(value, fieldPath, { min: 1, max: MAX_MESSAGE_BYTES, fallback: rule.fallback });
  }

  /**
   * An optional client certificate and key under `parent`: both or neither, since one
   * without the other cannot authenticate. Returns the pair only when both are present.
   */
  optionalCertKey(section: Mapping, parent: string): { readonly cert: string; readonly key: string } | undefined {
    const cert = this.optionalFile(section['cert'], at(parent, 'cert'));
    const key = this.optionalFile(section['key'], at(parent, 'key'));
    if (isAbsent(section['cert']) && !isAbsent(section['key'])) {
      this.report(at(parent, 'cert'), 'is required when key is given');
    }
    if (isAbsent(section['key']) && !isAbsent(section['cert'])) {
      this.report(at(parent, 'key'), 'is required when cert is given');
    }
    return cert !== undefined && key !== undefined ? { cert, key } : undefined;
  }

  /** Resolves a path against the config file's directory. */
  resolve(given: string): string {
    return path.resolve(this.baseDir, given);
  }
}

/** Freezes `value` and everything reachable from it (shared and cyclic references included). */
export function deepFreeze<T>(value: T, seen = new WeakSet<object>()): T {
  if (typeof value !== 'object' || value === null || seen.has(value)) return value;
  seen.add(value);
  Object.freeze(value);
  for (const child of Object.values(value)) deepFreeze<unknown>(child, seen);
  return value;
}

/** Why `file` cannot be read as a regular file, or undefined when it can. */
function readableFileProblem(file: string): string | undefined {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return `file does not exist: ${file}`;
  }
  if (!stat.isFile()) return `not a regular file: ${file}`;
  try {
    fs.accessSync(file, fs.constants.R_OK);
  } catch {
    return `file is not readable: ${file}`;
  }
  return undefined;
}

/** Numbers are operator-chosen limits, not secrets, so they may appear in messages. */
function describeNumber(value: unknown): string {
  return typeof value === 'number' ? String(value) : describe(value);
}

/** The allowed key within edit distance 2 of `key`, if exactly one is closest. */
function closest(key: string, allowed: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of allowed) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

/** Levenshtein distance; keys are short, so the quadratic table is fine. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}
