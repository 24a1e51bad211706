/**
 * Every piece of TLS material a config names, loaded the way the start loads it, with
 * each problem reported against the field at fault: `check-config` and the start run
 * this same check, so a config check-config accepts does not fail later on a raw
 * OpenSSL message, and a broken one fails both with exit status 2 and a field path
 * (e.g. `server.tls.key: does not match server.tls.cert`).
 *
 * Two layers. First each file on its own (certificates parse, the key is a private key,
 * the key belongs to the first certificate of its file), which is what names the field.
 * Then the very functions the start uses (serverTlsMaterial, readUpstreamMaterial,
 * and tls.createSecureContext for the admin and syslog listeners, which is what
 * https.createServer and tls.connect do with them), so nothing they refuse can pass:
 * a refusal the first layer did not explain is reported against the section.
 */
import { createPrivateKey, X509Certificate, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import { ConfigError, type ConfigIssue } from '../config/load.js';
import type { Config } from '../config/types.js';
import { readUpstreamMaterial } from '../upstream/pool.js';
import { serverTlsMaterial } from './client-listener.js';

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/gu;

/** One set of TLS files (a section of the config) and the start's own loader for it. */
interface MaterialSet {
  /** Config path of the section, e.g. `server.tls`. */
  readonly path: string;
  /** Certificate-bundle fields: field name -> file. */
  readonly bundles: Readonly<Record<string, string | undefined>>;
  /** The identity pair, when the section has one: its certificate and key fields. */
  readonly pair?: { readonly certField: string; readonly keyField: string; readonly cert: string; readonly key: string };
  /** A CRL field, when there is one. */
  readonly crl?: { readonly field: string; readonly file: string };
  /** What the start does with the section; throws when the material is unusable. */
  readonly load: () => void;
}

/** Reasons stay short and never quote file contents (a key file holds a secret). */
function reason(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return (message.split('\n', 1)[0] ?? message).replace(/^error:[0-9A-F]+:/u, '').trim();
}

function read(file: string): Buffer | string {
  try {
    return readFileSync(file);
  } catch (error: unknown) {
    const code = error instanceof Error && 'code' in error && typeof error.code === 'string' ? error.code : 'read error';
    return `cannot be read (${code})`;
  }
}

/** The certificates of a PEM bundle, or why it is not one. */
function certificates(pem: Buffer): X509Certificate[] | string {
  const found: X509Certificate[] = [];
  for (const match of pem.toString('latin1').matchAll(PEM_BLOCK)) {
    if (match[1] !== 'CERTIFICATE' && match[1] !== 'TRUSTED CERTIFICATE') continue;
    try {
      found.push(new X509Certificate(match[0]));
    } catch {
      return `certificate ${found.length + 1} of the file does not parse`;
    }
  }
  return found.length === 0 ? 'no PEM certificate found' : found;
}

function privateKey(pem: Buffer): KeyObject | string {
  try {
    return createPrivateKey(pem);
  } catch (error: unknown) {
    return `not a usable PEM private key (${reason(error)})`;
  }
}

/** The problems of one set, each against its field; empty when the start would accept it. */
function setIssues(set: MaterialSet): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const field = (name: string): string => `${set.path}.${name}`;
  for (const [name, file] of Object.entries(set.bundles)) {
    if (file === undefined) continue;
    const pem = read(file);
    const parsed = typeof pem === 'string' ? pem : certificates(pem);
    if (typeof parsed === 'string') issues.push({ path: field(name), message: parsed });
  }
  if (set.pair !== undefined) {
    const { certField, keyField } = set.pair;
    const certPem = read(set.pair.cert);
    const keyPem = read(set.pair.key);
    const certs = typeof certPem === 'string' ? certPem : certificates(certPem);
    const key = typeof keyPem === 'string' ? keyPem : privateKey(keyPem);
    if (typeof certs === 'string') issues.push({ path: field(certField), message: certs });
    if (typeof key === 'string') issues.push({ path: field(keyField), message: key });
    const leaf = typeof certs === 'string' ? undefined : certs[0];
    if (leaf !== undefined && typeof key !== 'string' && !leaf.checkPrivateKey(key)) {
      issues.push({ path: field(keyField), message: `does not match ${field(certField)}` });
    }
  }
  if (set.crl !== undefined) {
    const pem = read(set.crl.file);
    if (typeof pem === 'string') issues.push({ path: field(set.crl.field), message: pem });
    else {
      try {
        tls.createSecureContext({ crl: pem });
      } catch (error: unknown) {
        issues.push({ path: field(set.crl.field), message: `not a usable PEM CRL (${reason(error)})` });
      }
    }
  }
  if (issues.length > 0) return issues;
  try {
    set.load();
  } catch (error: unknown) {
    return [{ path: set.path, message: reason(error) }];
  }
  return [];
}

/** The TLS sections of `config`, each with the loader the start uses for it. */
function materialSets(config: Config): MaterialSet[] {
  const server = config.server.tls;
  const upstream = config.upstream.tls;
  const sets: MaterialSet[] = [
    {
      path: 'server.tls',
      bundles: { clientCA: server.clientCA },
      pair: { certField: 'cert', keyField: 'key', cert: server.cert, key: server.key },
      ...(server.crl === undefined ? {} : { crl: { field: 'crl', file: server.crl } }),
      load: () => serverTlsMaterial(server),
    },
    {
      path: 'upstream.tls',
      bundles: { ca: upstream.ca },
      ...(upstream.cert === undefined || upstream.key === undefined
        ? {}
        : { pair: { certField: 'cert', keyField: 'key', cert: upstream.cert, key: upstream.key } }),
      load: () => readUpstreamMaterial(config.upstream),
    },
  ];
  const admin = config.admin.tls;
  if (admin !== undefined) {
    sets.push({
      path: 'admin.tls',
      bundles: {},
      pair: { certField: 'cert', keyField: 'key', cert: admin.cert, key: admin.key },
      load: () => tls.createSecureContext({ cert: readFileSync(admin.cert), key: readFileSync(admin.key) }),
    });
  }
  const syslog = config.audit.syslog;
  if (syslog !== undefined) {
    sets.push({
      path: 'audit.syslog',
      bundles: { ca: syslog.ca },
      ...(syslog.cert === undefined || syslog.key === undefined
        ? {}
        : { pair: { certField: 'cert', keyField: 'key', cert: syslog.cert, key: syslog.key } }),
      load: () =>
        tls.createSecureContext({
          ca: readFileSync(syslog.ca),
          ...(syslog.cert === undefined ? {} : { cert: readFileSync(syslog.cert) }),
          ...(syslog.key === undefined ? {} : { key: readFileSync(syslog.key) }),
        }),
    });
  }
  return sets;
}

/** Every problem with the TLS material `config` names; empty when all of it loads. */
export function tlsMaterialIssues(config: Config): ConfigIssue[] {
  return materialSets(config).flatMap(setIssues);
}

/** Throws a ConfigError (exit status 2, field paths) unless every piece of TLS material loads. */
export function assertTlsMaterial(config: Config): void {
  const issues = tlsMaterialIssues(config);
  if (issues.length > 0) throw new ConfigError(issues, config.source);
}
