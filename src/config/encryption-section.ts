/**
 * Parser for the optional `encryption` section: which key ranges have their values
 * encrypted at rest, and with which providers. It is shaped like Kubernetes'
 * EncryptionConfiguration (a list of resources, each with an ordered list of providers
 * whose first one encrypts), with key prefixes or ranges in place of Kubernetes
 * resource names:
 *
 *   encryption:
 *     resources:
 *       - name: secrets
 *         prefixes: [/registry/secrets/]
 *         providers:
 *           - aesgcm: { keys: [{ name: key2, file: keys/key2 }, { name: key1, file: keys/key1 }] }
 *           - identity: {}
 *
 * The section is either that mapping inline or the path of a file holding it; a file is
 * watched and reloaded (like the policy), so keys can be added and rotated without a
 * restart. Keys are only ever read from key files (src/encryption/key-file.ts), never
 * written into the config itself, so the config may be readable by anyone. Every key
 * file is checked here (exists, 32 bytes of base64, no group or other access), so a bad
 * one stops the start and shows in check-config with its field path.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseDocument } from 'yaml';
import { readKeyFile } from '../encryption/key-file.js';
import { compareEnds, prefixEnd, type KeyInterval } from '../policy/key-range.js';
import { ConfigError } from './errors.js';
import type { EncryptionConfig, EncryptionKeyConfig, EncryptionProviderConfig, EncryptionProviderKind, EncryptionResourceConfig } from './types.js';
import { Reader, at, deepFreeze, describe, index, isAbsent, isMapping, type Mapping } from './read.js';

const SECTION = 'encryption';
const SECTION_KEYS = ['resources'];
const RESOURCE_KEYS = ['name', 'prefixes', 'ranges', 'providers'];
const RANGE_KEYS = ['start', 'end'];
const PROVIDER_KINDS: readonly EncryptionProviderKind[] = ['aesgcm', 'secretbox', 'identity'];
const KEY_KEYS = ['name', 'file'];

/** Resource names become metric label values: short, lower case, no separators to confuse. */
const RESOURCE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/u;
/** Key names are written into every stored value's header, between ':' separators. */
const KEY_NAME = /^[A-Za-z0-9_.-]{1,64}$/u;

/**
 * Reads the optional `encryption` section: undefined when absent; a string is the path of
 * a file holding the section (resolved against the config's directory and read now).
 */
export function readEncryption(reader: Reader, value: unknown): EncryptionConfig | undefined {
  if (isAbsent(value)) return undefined;
  if (typeof value === 'string') {
    const file = reader.resolve(value);
    const document = readEncryptionDocument(reader, file);
    if (document === undefined) return { file, resources: [] };
    const fileReader = new Reader(path.dirname(file));
    const resources = readResources(fileReader, document);
    for (const issue of fileReader.issues) reader.report(issue.path, `${issue.message} (in ${file})`);
    return { file, resources };
  }
  return { resources: readResources(reader, value) };
}

/**
 * Reads and validates an encryption file on its own (a reload). Paths in its issues
 * start at `encryption`, as in the main config.
 * @throws ConfigError listing every problem.
 */
export function loadEncryptionFile(file: string): EncryptionConfig {
  const reader = new Reader(path.dirname(file));
  const document = readEncryptionDocument(reader, file);
  const resources = document === undefined ? [] : readResources(reader, document);
  if (reader.issues.length > 0) throw new ConfigError(reader.issues, file);
  return deepFreeze<EncryptionConfig>({ file, resources });
}

/** The YAML document of an encryption file, or undefined after reporting why it cannot be read. */
function readEncryptionDocument(reader: Reader, file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    reader.report(SECTION, `cannot read the encryption file ${file}`);
    return undefined;
  }
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    reader.report(SECTION, `YAML syntax error in ${file}: ${error.message.split('\n', 1)[0] ?? ''}`);
    return undefined;
  }
  try {
    return doc.toJS();
  } catch {
    reader.report(SECTION, `YAML error in ${file}: the document cannot be converted`);
    return undefined;
  }
}

function readResources(reader: Reader, value: unknown): EncryptionResourceConfig[] {
  const section = reader.mapping(value, SECTION, SECTION_KEYS);
  const listPath = at(SECTION, 'resources');
  const list = section['resources'];
  if (!Array.isArray(list) || list.length === 0) {
    reader.report(listPath, isAbsent(list) ? 'is required (a list of resources)' : 'must be a non-empty list of resources');
    return [];
  }
  const resources: EncryptionResourceConfig[] = [];
  const names = new Set<string>();
  /** Every range seen so far, with the path of the resource it belongs to, to refuse overlaps. */
  const seen: { interval: KeyInterval; where: string }[] = [];
  list.forEach((item: unknown, i) => {
    const where = index(listPath, i);
    const resource = readResource(reader, item, where);
    if (resource === undefined) return;
    if (names.has(resource.name)) reader.report(at(where, 'name'), `duplicate resource name "${resource.name}"`);
    names.add(resource.name);
    const own = intervalsOf(resource);
    for (const interval of own) {
      const clash = seen.find((other) => overlaps(other.interval, interval));
      // A value under two resources would have two provider lists: which one reads it?
      if (clash !== undefined) reader.report(where, `its key ranges overlap those of ${clash.where}`);
    }
    for (const interval of own) seen.push({ interval, where });
    resources.push(resource);
  });
  return resources;
}

function readResource(reader: Reader, value: unknown, where: string): EncryptionResourceConfig | undefined {
  if (!isMapping(value)) {
    reader.report(where, `must be a mapping, got ${describe(value)}`);
    return undefined;
  }
  const raw = reader.mapping(value, where, RESOURCE_KEYS);
  const name = reader.requiredString(raw['name'], at(where, 'name'));
  if (name !== '' && !RESOURCE_NAME.test(name)) {
    reader.report(at(where, 'name'), 'must be 1-63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit');
  }
  const prefixes = readPrefixes(reader, raw['prefixes'], at(where, 'prefixes'));
  const ranges = readRanges(reader, raw['ranges'], at(where, 'ranges'));
  if (prefixes.length === 0 && ranges.length === 0 && isAbsent(raw['prefixes']) && isAbsent(raw['ranges'])) {
    reader.report(where, 'needs prefixes or ranges (the keys whose values are encrypted)');
  }
  const providers = readProviders(reader, raw['providers'], at(where, 'providers'));
  return { name, prefixes, ranges, providers };
}

function readPrefixes(reader: Reader, value: unknown, where: string): string[] {
  if (isAbsent(value)) return [];
  if (!Array.isArray(value)) {
    reader.report(where, `must be a list of key prefixes, got ${describe(value)}`);
    return [];
  }
  const out: string[] = [];
  value.forEach((item: unknown, i) => {
    // The empty prefix would be every key, lease and lock recipes included: name them instead.
    const prefix = reader.requiredString(item, index(where, i));
    if (prefix !== '') out.push(prefix);
  });
  return out;
}

function readRanges(reader: Reader, value: unknown, where: string): { start: string; end: string }[] {
  if (isAbsent(value)) return [];
  if (!Array.isArray(value)) {
    reader.report(where, `must be a list of { start, end } ranges, got ${describe(value)}`);
    return [];
  }
  const out: { start: string; end: string }[] = [];
  value.forEach((item: unknown, i) => {
    const itemPath = index(where, i);
    const raw = reader.mapping(item, itemPath, RANGE_KEYS);
    const start = reader.requiredString(raw['start'], at(itemPath, 'start'));
    const end = reader.requiredString(raw['end'], at(itemPath, 'end'));
    if (start === '' || end === '') return;
    if (Buffer.compare(Buffer.from(end, 'utf8'), Buffer.from(start, 'utf8')) <= 0) {
      reader.report(at(itemPath, 'end'), 'must sort after start (ranges are [start, end) over the keys\' bytes)');
      return;
    }
    out.push({ start, end });
  });
  return out;
}

function readProviders(reader: Reader, value: unknown, where: string): EncryptionProviderConfig[] {
  if (!Array.isArray(value) || value.length === 0) {
    reader.report(where, isAbsent(value) ? 'is required (an ordered list; the first one encrypts)' : 'must be a non-empty list of providers');
    return [];
  }
  const out: EncryptionProviderConfig[] = [];
  const kinds = new Set<EncryptionProviderKind>();
  value.forEach((item: unknown, i) => {
    const itemPath = index(where, i);
    const provider = readProvider(reader, item, itemPath);
    if (provider === undefined) return;
    // One entry per kind: a second aesgcm list would only split one key list in two.
    if (kinds.has(provider.kind)) reader.report(itemPath, `provider ${provider.kind} is listed twice (put all its keys in one entry)`);
    kinds.add(provider.kind);
    out.push(provider);
  });
  return out;
}

function readProvider(reader: Reader, value: unknown, where: string): EncryptionProviderConfig | undefined {
  const raw = reader.mapping(value, where, PROVIDER_KINDS);
  const present = PROVIDER_KINDS.filter((kind) => kind in raw);
  if (present.length !== 1) {
    reader.report(where, `must name exactly one provider (${PROVIDER_KINDS.join(', ')})`);
    return undefined;
  }
  const kind = present[0] as EncryptionProviderKind;
  const body = raw[kind];
  const bodyPath = at(where, kind);
  if (kind === 'identity') {
    if (!isAbsent(body)) reader.mapping(body, bodyPath, []);
    return { kind };
  }
  const section: Mapping = reader.requiredMapping(body, bodyPath, ['keys']) ?? {};
  return { kind, keys: readKeys(reader, section['keys'], at(bodyPath, 'keys')) };
}

function readKeys(reader: Reader, value: unknown, where: string): EncryptionKeyConfig[] {
  if (!Array.isArray(value) || value.length === 0) {
    reader.report(where, isAbsent(value) ? 'is required (a list of { name, file }; the first one encrypts)' : 'must be a non-empty list of { name, file }');
    return [];
  }
  const out: EncryptionKeyConfig[] = [];
  const names = new Set<string>();
  value.forEach((item: unknown, i) => {
    const itemPath = index(where, i);
    const raw = reader.mapping(item, itemPath, KEY_KEYS);
    const name = reader.requiredString(raw['name'], at(itemPath, 'name'));
    if (name !== '' && !KEY_NAME.test(name)) reader.report(at(itemPath, 'name'), 'must be 1-64 characters of A-Z, a-z, 0-9, "_", "." and "-"');
    if (names.has(name)) reader.report(at(itemPath, 'name'), `duplicate key name "${name}"`);
    names.add(name);
    const file = readKeyFilePath(reader, raw['file'], at(itemPath, 'file'));
    out.push({ name, file });
  });
  return out;
}

/** The key file's absolute path, after checking the file itself (its content is not kept). */
function readKeyFilePath(reader: Reader, value: unknown, where: string): string {
  if (isAbsent(value)) {
    reader.report(where, 'is required (a file holding the key in base64; keys are never written inline)');
    return '';
  }
  const given = reader.requiredString(value, where);
  if (given === '') return '';
  const file = reader.resolve(given);
  const result = readKeyFile(file);
  if ('problem' in result) reader.report(where, result.problem);
  else result.key.fill(0);
  return file;
}

/** The byte intervals a resource covers. */
export function intervalsOf(resource: EncryptionResourceConfig): KeyInterval[] {
  const out: KeyInterval[] = [];
  for (const prefix of resource.prefixes) {
    const from = Buffer.from(prefix, 'utf8');
    out.push({ from, to: prefixEnd(from) });
  }
  for (const range of resource.ranges) out.push({ from: Buffer.from(range.start, 'utf8'), to: Buffer.from(range.end, 'utf8') });
  return out;
}

function overlaps(a: KeyInterval, b: KeyInterval): boolean {
  return compareEnds(a.from, b.to) < 0 && compareEnds(b.from, a.to) < 0;
}
