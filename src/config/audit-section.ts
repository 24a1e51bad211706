/**
 * Parser for the `audit` section: where audit records go, how much detail each method
 * group gets (`level`, refined by the ordered `rules`, ./audit-rules-section.ts), and
 * what happens to calls when records cannot be written.
 */
import fs from 'node:fs';
import path from 'node:path';
import type { AuditConfig, AuditLevel, AuditSinkConfig } from './types.js';
import { parseSink } from './addresses.js';
import { readAuditRules } from './audit-rules-section.js';
import type { Reader } from './read.js';
import { at, describe, isAbsent, isMapping } from './read.js';

const AUDIT_KEYS = ['sink', 'onFailure', 'level', 'rules', 'syslog', 'bufferRecords'];
const LEVEL_KEYS = ['read', 'write', 'admin', 'auth'] as const;
const SYSLOG_KEYS = ['ca', 'cert', 'key', 'appName'];
const LEVELS: readonly AuditLevel[] = ['none', 'metadata'];

/** RFC 5424 APP-NAME: 1 to 48 printable US-ASCII characters, no spaces. */
const APP_NAME = /^[\x21-\x7e]{1,48}$/;

/** Reads the `audit` section (optional; defaults to metadata records on stdout, deny on failure). */
export function readAudit(reader: Reader, value: unknown): AuditConfig {
  const base = 'audit';
  const raw = reader.optionalMapping(value, base, AUDIT_KEYS);
  const sink = readSink(reader, raw['sink'], at(base, 'sink'));
  const syslog = readSyslog(reader, raw['syslog'], at(base, 'syslog'), sink);
  return {
    sink: sink ?? { kind: 'stdout' },
    onFailure: reader.choice(raw['onFailure'], at(base, 'onFailure'), ['deny', 'allow'], 'deny'),
    level: readLevels(reader, raw['level'], at(base, 'level')),
    ...(syslog === undefined ? {} : { syslog }),
    bufferRecords: reader.integer(raw['bufferRecords'], at(base, 'bufferRecords'), {
      min: 1,
      max: 2_147_483_647,
      fallback: 100_000,
    }),
    rules: readAuditRules(reader, raw['rules'], at(base, 'rules')),
  };
}

/** Returns undefined when the sink spec is invalid (already reported). */
function readSink(reader: Reader, value: unknown, fieldPath: string): AuditSinkConfig | undefined {
  if (isAbsent(value)) return { kind: 'stdout' };
  if (typeof value !== 'string') {
    reader.report(fieldPath, `must be a string, got ${describe(value)}`);
    return undefined;
  }
  const parsed = parseSink(value);
  if (!parsed.ok) {
    reader.report(fieldPath, parsed.error);
    return undefined;
  }
  if (parsed.value.kind !== 'file') return parsed.value;
  const file = reader.resolve(parsed.value.path);
  const problem = writableFileProblem(file);
  if (problem !== undefined) reader.report(fieldPath, problem);
  return { kind: 'file', path: file };
}

/**
 * The audit file need not exist yet (the sink creates it), but its directory must, and
 * both must be writable; otherwise every call would be denied from the first request.
 */
function writableFileProblem(file: string): string | undefined {
  const dir = path.dirname(file);
  let dirStat: fs.Stats;
  try {
    dirStat = fs.statSync(dir);
  } catch {
    return `directory does not exist: ${dir}`;
  }
  if (!dirStat.isDirectory()) return `not a directory: ${dir}`;
  let fileStat: fs.Stats | undefined;
  try {
    fileStat = fs.statSync(file);
  } catch {
    fileStat = undefined;
  }
  if (fileStat !== undefined && !fileStat.isFile()) return `not a regular file: ${file}`;
  const target = fileStat === undefined ? dir : file;
  try {
    fs.accessSync(target, fs.constants.W_OK);
  } catch {
    return `${fileStat === undefined ? 'directory' : 'file'} is not writable: ${target}`;
  }
  return undefined;
}

/** `level: none` sets every group; a mapping sets groups individually (default metadata). */
function readLevels(reader: Reader, value: unknown, fieldPath: string): AuditConfig['level'] {
  if (isAbsent(value) || typeof value === 'string') {
    const all = reader.choice(value, fieldPath, LEVELS, 'metadata');
    return { read: all, write: all, admin: all, auth: all };
  }
  if (!isMapping(value)) {
    reader.report(fieldPath, `must be one of ${LEVELS.join(', ')} or a mapping of ${LEVEL_KEYS.join(', ')}`);
    return { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' };
  }
  const raw = reader.mapping(value, fieldPath, LEVEL_KEYS);
  const level = (key: (typeof LEVEL_KEYS)[number]): AuditLevel =>
    reader.choice(raw[key], at(fieldPath, key), LEVELS, 'metadata');
  return { read: level('read'), write: level('write'), admin: level('admin'), auth: level('auth') };
}

/**
 * `audit.syslog` belongs to the syslog sink only: required with it, refused without it
 * (a leftover block would suggest records go somewhere they do not).
 */
function readSyslog(
  reader: Reader,
  value: unknown,
  fieldPath: string,
  sink: AuditSinkConfig | undefined,
): AuditConfig['syslog'] {
  if (sink !== undefined && sink.kind !== 'syslog' && !isAbsent(value)) {
    reader.report(fieldPath, 'is only allowed when audit.sink is syslog+tls://host:port');
    return undefined;
  }
  if (sink?.kind === 'syslog' && isAbsent(value)) {
    reader.report(fieldPath, 'is required when audit.sink is syslog+tls://host:port (it names the CA)');
    return undefined;
  }
  if (isAbsent(value)) return undefined;
  const raw = reader.mapping(value, fieldPath, SYSLOG_KEYS);
  const ca = reader.requiredFile(raw['ca'], at(fieldPath, 'ca'));
  const pair = reader.optionalCertKey(raw, fieldPath);
  const appName = reader.optionalString(raw['appName'], at(fieldPath, 'appName')) ?? 'etcdgate';
  if (!APP_NAME.test(appName)) {
    reader.report(at(fieldPath, 'appName'), 'must be 1 to 48 printable ASCII characters without spaces');
  }
  return { ca, ...(pair === undefined ? {} : pair), appName };
}
