/**
 * Configuration loading: the one place that reads etcdgate's YAML. It validates the
 * whole document, collecting every problem with the path of the field at fault, fills
 * in defaults, resolves file paths against the config file's directory, checks that the
 * files it names exist, and hands back one deep-frozen Config (see ./types.ts). Anything
 * wrong throws a ConfigError listing all problems at once; nothing is read at import time.
 *
 * Unlimited message sizes (`server.maxSendBytes`, `upstream.maxRecvBytes` by default)
 * are stored as UNLIMITED_BYTES (-1), gRPC's usual spelling of "no limit".
 */
import fs from 'node:fs';
import path from 'node:path';
import { LineCounter, parseDocument } from 'yaml';
import type { Config, LogConfig } from './types.js';
import { ConfigError, ROOT_PATH } from './errors.js';
import type { ConfigIssue } from './errors.js';
import { Reader, deepFreeze, describe, isAbsent, isMapping } from './read.js';
import { checkDistinctListeners, readAdmin, readServer } from './server-section.js';
import { readUpstream } from './upstream-section.js';
import { readAudit } from './audit-section.js';
import { readLimits } from './limits-section.js';
import { readCache } from './cache-section.js';
import { readGateway } from './gateway-section.js';
import { readEncryption } from './encryption-section.js';
import { readBackup } from './backup-section.js';

export { ConfigError, ROOT_PATH } from './errors.js';
export type { ConfigIssue } from './errors.js';
export { UNLIMITED_BYTES } from './read.js';

const ROOT_KEYS = ['server', 'upstream', 'admin', 'audit', 'log', 'limits', 'cache', 'gateway', 'encryption', 'backup', 'policy'];
const LOG_LEVELS: readonly LogConfig['level'][] = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Where a document came from: `source` is reported in Config; `baseDir` anchors relative paths. */
export interface ParseOptions {
  readonly source: string;
  readonly baseDir: string;
}

/**
 * Validates an already-parsed YAML document and returns the frozen Config. The input is
 * never modified or retained (an inline policy is copied before freezing).
 * @throws ConfigError listing every problem found.
 */
export function parseConfig(document: unknown, options: ParseOptions): Config {
  const reader = new Reader(path.resolve(options.baseDir));
  let root: Readonly<Record<string, unknown>>;
  if (isAbsent(document)) {
    // An empty file: report the missing required sections rather than a bare "empty".
    root = {};
  } else if (isMapping(document)) {
    root = reader.mapping(document, '', ROOT_KEYS);
  } else {
    throw new ConfigError(
      [{ path: ROOT_PATH, message: `must be a mapping of settings, got ${describe(document)}` }],
      options.source,
    );
  }

  const server = readServer(reader, root['server']);
  const upstream = readUpstream(reader, root['upstream']);
  const admin = readAdmin(reader, root['admin']);
  checkDistinctListeners(reader, server.listen, admin.listen);
  const audit = readAudit(reader, root['audit']);
  const logSection = reader.optionalMapping(root['log'], 'log', ['level']);
  const log: LogConfig = { level: reader.choice(logSection['level'], 'log.level', LOG_LEVELS, 'info') };
  const policy = readPolicy(reader, root['policy']);
  const limits = readLimits(reader, root['limits']);
  const cache = readCache(reader, root['cache']);
  const gateway = readGateway(reader, root['gateway']);
  const encryption = readEncryption(reader, root['encryption']);
  const backup = readBackup(reader, root['backup']);

  if (reader.issues.length > 0) throw new ConfigError(reader.issues, options.source);
  return deepFreeze<Config>({
    source: options.source,
    server,
    upstream,
    admin,
    audit,
    log,
    limits,
    cache,
    gateway,
    ...(encryption === undefined ? {} : { encryption }),
    ...(backup === undefined ? {} : { backup }),
    policy,
  });
}

/**
 * Parses YAML text and validates it (see parseConfig). YAML syntax errors, including
 * duplicate keys, become ConfigError issues that give the line and column.
 */
export function loadConfigText(text: string, source: string, baseDir: string): Config {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length > 0) {
    const issues: ConfigIssue[] = doc.errors.map((error) => {
      const { line, col } = lineCounter.linePos(error.pos[0]);
      return { path: ROOT_PATH, message: `YAML syntax error at line ${line}, column ${col}: ${firstLine(error.message)}` };
    });
    throw new ConfigError(issues, source);
  }
  let document: unknown;
  try {
    document = doc.toJS();
  } catch (error: unknown) {
    // toJS throws on alias bombs (too many alias expansions) and unresolvable aliases.
    const message = error instanceof Error ? firstLine(error.message) : 'cannot convert the document';
    throw new ConfigError([{ path: ROOT_PATH, message: `YAML error: ${message}` }], source);
  }
  return parseConfig(document, { source, baseDir });
}

/**
 * Reads, parses and validates the config file at `file`. Relative paths inside it are
 * resolved against the file's directory; Config.source is the file's absolute path.
 * @throws ConfigError when the file cannot be read or the config is invalid.
 */
export function loadConfig(file: string): Config {
  const source = path.resolve(file);
  let text: string;
  try {
    text = fs.readFileSync(source, 'utf8');
  } catch (error: unknown) {
    const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'read error';
    throw new ConfigError([{ path: ROOT_PATH, message: `cannot read config file ${source} (${code})` }], source);
  }
  return loadConfigText(text, source, path.dirname(source));
}

/** A string is a policy file (resolved, must exist); a mapping is the policy itself. */
function readPolicy(reader: Reader, value: unknown): Config['policy'] {
  if (isAbsent(value)) {
    reader.report('policy', 'is required (a policy file path or an inline policy mapping)');
    return { kind: 'inline', document: null };
  }
  if (typeof value === 'string') return { kind: 'file', path: reader.requiredFile(value, 'policy') };
  if (isMapping(value)) return { kind: 'inline', document: copyPlainData(reader, value) };
  reader.report('policy', `must be a policy file path or a mapping, got ${describe(value)}`);
  return { kind: 'inline', document: null };
}

/** Copies the inline policy so freezing it cannot freeze the caller's object. */
function copyPlainData(reader: Reader, value: unknown): unknown {
  try {
    return structuredClone(value);
  } catch {
    reader.report('policy', 'must contain only plain data');
    return null;
  }
}

function firstLine(message: string): string {
  return message.split('\n', 1)[0] ?? message;
}
