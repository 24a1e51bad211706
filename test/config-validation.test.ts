/**
 * Proves that the config loader accepts a minimal valid file with the documented
 * defaults, reports every mistake (all of them, each at the right path), resolves paths
 * against the config file's directory, turns YAML syntax errors into ConfigError, and
 * returns a deep-frozen Config.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, ROOT_PATH, UNLIMITED_BYTES, loadConfig, loadConfigText, parseConfig } from '../src/config/load.js';
import type { Config } from '../src/config/types.js';

type Doc = Record<string, unknown>;

let dir: string;
const FILES = ['ca.crt', 'server.crt', 'server.key', 'client.crt', 'client.key', 'crl.pem', 'policy.yaml'];

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdgate-config-'));
  fs.mkdirSync(path.join(dir, 'pki'));
  // Contents are irrelevant to the loader: it only checks the files exist and are readable.
  for (const name of FILES) fs.writeFileSync(path.join(dir, 'pki', name), 'placeholder\n');
  fs.mkdirSync(path.join(dir, 'logs'));
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** A fresh minimal valid document using paths relative to `dir`. */
function minimal(): Doc {
  return {
    server: {
      listen: '127.0.0.1:2379',
      advertiseClientUrls: ['https://127.0.0.1:2379'],
      tls: { cert: 'pki/server.crt', key: 'pki/server.key', clientCA: 'pki/ca.crt' },
    },
    upstream: {
      endpoints: ['https://127.0.0.1:12379'],
      tls: { ca: 'pki/ca.crt' },
    },
    policy: 'pki/policy.yaml',
  };
}

const MINIMAL_YAML = `
server:
  listen: 127.0.0.1:2379
  advertiseClientUrls: [https://127.0.0.1:2379]
  tls: { cert: pki/server.crt, key: pki/server.key, clientCA: pki/ca.crt }
upstream:
  endpoints: [https://127.0.0.1:12379]
  tls: { ca: pki/ca.crt }
policy: pki/policy.yaml
`;

function parse(doc: unknown): Config {
  return parseConfig(doc, { source: '', baseDir: dir });
}

/** Sets `value` at a dotted path inside `doc`, creating mappings on the way; undefined deletes. */
function set(doc: Doc, dotted: string, value: unknown): Doc {
  const keys = dotted.split('.');
  const last = keys.pop() ?? '';
  let node: Doc = doc;
  for (const key of keys) {
    const next = node[key];
    if (typeof next !== 'object' || next === null) node[key] = {};
    node = node[key] as Doc;
  }
  if (value === undefined) delete node[last];
  else node[last] = value;
  return doc;
}

function issuesOf(run: () => unknown): readonly { path: string; message: string }[] {
  try {
    run();
  } catch (error: unknown) {
    if (error instanceof ConfigError) return error.issues;
    throw error;
  }
  throw new Error('expected a ConfigError, but the config was accepted');
}

const pki = (name: string): string => path.join(dir, 'pki', name);

describe('a minimal valid config', () => {
  it('loads from a file with every documented default', () => {
    const file = path.join(dir, 'etcdgate.yaml');
    fs.writeFileSync(file, MINIMAL_YAML);
    const config = loadConfig(file);
    expect(config).toEqual({
      source: file,
      server: {
        listen: { host: '127.0.0.1', port: 2379 },
        advertiseClientUrls: ['https://127.0.0.1:2379'],
        tls: { cert: pki('server.crt'), key: pki('server.key'), clientCA: pki('ca.crt'), minVersion: 'TLSv1.2' },
        maxRecvBytes: 10 * 1024 * 1024,
        maxSendBytes: 2_147_483_647,
        shutdownTimeoutMs: 10_000,
        requestReadTimeoutMs: 5_000,
        maxInflateRatio: 100,
      },
      upstream: {
        endpoints: ['https://127.0.0.1:12379'],
        tls: { ca: pki('ca.crt') },
        keepaliveTimeMs: 30_000,
        keepaliveTimeoutMs: 10_000,
        dialTimeoutMs: 5_000,
        maxRecvBytes: UNLIMITED_BYTES,
        healthCheck: { intervalMs: 5_000, timeoutMs: 2_000 },
        versionCheck: { intervalMs: 30_000, minimumVersions: ['3.5.33', '3.6.14', '3.7.1'] },
      },
      admin: { listen: { host: '127.0.0.1', port: 9091 } },
      audit: {
        sink: { kind: 'stdout' },
        onFailure: 'deny',
        level: { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' },
        bufferRecords: 100_000,
        rules: [],
      },
      log: { level: 'info' },
      limits: {
        maxConnections: 10_000,
        maxStreamsPerConnection: 1_000,
        maxWatchersPerIdentity: 10_000,
        requestsPerSecond: 10_000,
        burst: 20_000,
        handshakeTimeoutMs: 10_000,
        maxWatcherBufferBytes: 16 * 1024 * 1024,
        idleTimeoutMs: 300_000,
        connectionBufferBytes: 16 * 1024 * 1024,
        totalBufferBytes: 256 * 1024 * 1024,
        refusalRecordsPerMinute: 60,
        refusalRecordsBurst: 20,
        refusalRecordsTotalPerMinute: 600,
        sendStallTimeoutMs: 30_000,
        maxRangeReadsPerIdentity: 16,
      },
      cache: { serializableRange: { enabled: false, maxEntries: 10_000, maxStalenessMs: 1_000 }, decryptedValues: { maxBytes: 16 * 1024 * 1024 } },
      gateway: { enabled: true, headersTimeoutMs: 10_000, bodyTimeoutMs: 30_000, idleTimeoutMs: 120_000, maxHeaderBytes: 16_384 },
      policy: { kind: 'file', path: pki('policy.yaml') },
    });
    expect(UNLIMITED_BYTES).toBe(-1);
  });

  it('resolves relative paths against the config file directory, not the working directory', () => {
    const nested = path.join(dir, 'nested');
    fs.mkdirSync(nested, { recursive: true });
    const file = path.join(nested, 'etcdgate.yaml');
    fs.writeFileSync(file, MINIMAL_YAML.replaceAll('pki/', '../pki/'));
    expect(process.cwd()).not.toBe(nested);
    const config = loadConfig(path.relative(process.cwd(), file));
    expect(config.source).toBe(file);
    expect(config.server.tls.cert).toBe(pki('server.crt'));
    expect(config.upstream.tls.ca).toBe(pki('ca.crt'));
    expect(config.policy).toEqual({ kind: 'file', path: pki('policy.yaml') });
  });

  it('keeps absolute paths as they are', () => {
    const config = parse(set(minimal(), 'server.tls.cert', pki('server.crt')));
    expect(config.server.tls.cert).toBe(pki('server.crt'));
  });
});

describe('accepted variants', () => {
  const cases: { name: string; edit: (doc: Doc) => void; check: (config: Config) => void }[] = [
    {
      name: 'an IPv6 listen address in brackets',
      edit: (doc) => set(doc, 'server.listen', '[::1]:2379'),
      check: (c) => expect(c.server.listen).toEqual({ host: '::1', port: 2379 }),
    },
    {
      name: 'port 0 for the listeners (tests let the OS choose)',
      edit: (doc) => {
        set(doc, 'server.listen', '127.0.0.1:0');
        set(doc, 'admin.listen', '127.0.0.1:0');
      },
      check: (c) => {
        expect(c.server.listen.port).toBe(0);
        expect(c.admin.listen.port).toBe(0);
      },
    },
    {
      name: 'explicit limits, TLS 1.3 and a CRL',
      edit: (doc) => {
        set(doc, 'server.tls.minVersion', 'TLSv1.3');
        set(doc, 'server.tls.crl', 'pki/crl.pem');
        set(doc, 'server.maxRecvBytes', 2048);
        set(doc, 'server.maxSendBytes', 4096);
        set(doc, 'upstream.maxRecvBytes', 'unlimited');
        set(doc, 'upstream.keepaliveTimeMs', 5000);
      },
      check: (c) => {
        expect(c.server.tls.minVersion).toBe('TLSv1.3');
        expect(c.server.tls.crl).toBe(pki('crl.pem'));
        expect([c.server.maxRecvBytes, c.server.maxSendBytes]).toEqual([2048, 4096]);
        expect(c.upstream.maxRecvBytes).toBe(UNLIMITED_BYTES);
        expect(c.upstream.keepaliveTimeMs).toBe(5000);
      },
    },
    {
      name: 'an upstream client certificate and server name',
      edit: (doc) => set(doc, 'upstream.tls', { ca: 'pki/ca.crt', cert: 'pki/client.crt', key: 'pki/client.key', serverName: 'etcd' }),
      check: (c) =>
        expect(c.upstream.tls).toEqual({ ca: pki('ca.crt'), cert: pki('client.crt'), key: pki('client.key'), serverName: 'etcd' }),
    },
    {
      name: 'admin TLS',
      edit: (doc) => set(doc, 'admin', { listen: '[::1]:9443', tls: { cert: 'pki/server.crt', key: 'pki/server.key' } }),
      check: (c) =>
        expect(c.admin).toEqual({ listen: { host: '::1', port: 9443 }, tls: { cert: pki('server.crt'), key: pki('server.key') } }),
    },
    {
      name: 'a file audit sink relative to the config directory',
      edit: (doc) => set(doc, 'audit.sink', 'file:logs/audit.jsonl'),
      check: (c) => expect(c.audit.sink).toEqual({ kind: 'file', path: path.join(dir, 'logs', 'audit.jsonl') }),
    },
    {
      name: 'a syslog+tls audit sink with its syslog block',
      edit: (doc) =>
        set(doc, 'audit', { sink: 'syslog+tls://[::1]:6514', syslog: { ca: 'pki/ca.crt' }, onFailure: 'allow', bufferRecords: 10 }),
      check: (c) => {
        expect(c.audit.sink).toEqual({ kind: 'syslog', host: '::1', port: 6514 });
        expect(c.audit.syslog).toEqual({ ca: pki('ca.crt'), appName: 'etcdgate' });
        expect([c.audit.onFailure, c.audit.bufferRecords]).toEqual(['allow', 10]);
      },
    },
    {
      name: 'one audit level for every group',
      edit: (doc) => set(doc, 'audit.level', 'none'),
      check: (c) => expect(c.audit.level).toEqual({ read: 'none', write: 'none', admin: 'none', auth: 'none' }),
    },
    {
      name: 'audit levels per group, the rest defaulting to metadata',
      edit: (doc) => set(doc, 'audit.level', { read: 'none' }),
      check: (c) => expect(c.audit.level).toEqual({ read: 'none', write: 'metadata', admin: 'metadata', auth: 'metadata' }),
    },
    {
      name: 'log level',
      edit: (doc) => set(doc, 'log.level', 'debug'),
      check: (c) => expect(c.log.level).toBe('debug'),
    },
    {
      name: 'an inline policy, kept as written',
      edit: (doc) => set(doc, 'policy', { rules: [{ name: 'r', allow: ['read'] }] }),
      check: (c) => expect(c.policy).toEqual({ kind: 'inline', document: { rules: [{ name: 'r', allow: ['read'] }] } }),
    },
    {
      name: 'YAML null for an optional field (treated as absent)',
      edit: (doc) => set(doc, 'server.tls.crl', null),
      check: (c) => expect(c.server.tls.crl).toBeUndefined(),
    },
  ];

  it.each(cases)('$name', ({ edit, check }) => {
    const doc = minimal();
    edit(doc);
    check(parse(doc));
  });
});

describe('each kind of mistake is reported at its path', () => {
  const cases: { name: string; edit: (doc: Doc) => void; path: string; message: RegExp }[] = [
    { name: 'missing server', edit: (d) => set(d, 'server', undefined), path: 'server', message: /is required/ },
    { name: 'server not a mapping', edit: (d) => set(d, 'server', 'x'), path: 'server', message: /must be a mapping, got a string/ },
    { name: 'listen without port', edit: (d) => set(d, 'server.listen', 'localhost'), path: 'server.listen', message: /host:port/ },
    { name: 'listen port out of range', edit: (d) => set(d, 'server.listen', '127.0.0.1:70000'), path: 'server.listen', message: /0 to 65535/ },
    { name: 'unbracketed IPv6', edit: (d) => set(d, 'server.listen', '::1:2379'), path: 'server.listen', message: /brackets/ },
    { name: 'bracketed non-IPv6', edit: (d) => set(d, 'server.listen', '[localhost]:2379'), path: 'server.listen', message: /IPv6/ },
    { name: 'listen as a number', edit: (d) => set(d, 'server.listen', 2379), path: 'server.listen', message: /must be a string/ },
    { name: 'missing listen', edit: (d) => set(d, 'server.listen', undefined), path: 'server.listen', message: /is required/ },
    { name: 'empty advertise list', edit: (d) => set(d, 'server.advertiseClientUrls', []), path: 'server.advertiseClientUrls', message: /at least one/ },
    { name: 'advertise URL over http', edit: (d) => set(d, 'server.advertiseClientUrls', ['http://127.0.0.1:2379']), path: 'server.advertiseClientUrls[0]', message: /^must be an https:\/\/ URL$/ },
    { name: 'advertise not a list', edit: (d) => set(d, 'server.advertiseClientUrls', 'https://a:1'), path: 'server.advertiseClientUrls', message: /must be a list/ },
    { name: 'missing server.tls', edit: (d) => set(d, 'server.tls', undefined), path: 'server.tls', message: /is required/ },
    { name: 'missing server cert field', edit: (d) => set(d, 'server.tls.cert', undefined), path: 'server.tls.cert', message: /is required/ },
    { name: 'server cert file does not exist', edit: (d) => set(d, 'server.tls.cert', 'pki/nope.crt'), path: 'server.tls.cert', message: /file does not exist: .*pki[/\\]nope\.crt/ },
    { name: 'server key is a directory', edit: (d) => set(d, 'server.tls.key', 'pki'), path: 'server.tls.key', message: /not a regular file/ },
    { name: 'CRL file does not exist', edit: (d) => set(d, 'server.tls.crl', 'pki/nope.pem'), path: 'server.tls.crl', message: /file does not exist/ },
    { name: 'unsupported TLS version', edit: (d) => set(d, 'server.tls.minVersion', 'TLSv1.1'), path: 'server.tls.minVersion', message: /TLSv1\.2, TLSv1\.3/ },
    { name: 'zero maxRecvBytes', edit: (d) => set(d, 'server.maxRecvBytes', 0), path: 'server.maxRecvBytes', message: /integer from 1/ },
    { name: 'fractional maxRecvBytes', edit: (d) => set(d, 'server.maxRecvBytes', 1.5), path: 'server.maxRecvBytes', message: /integer/ },
    { name: 'maxRecvBytes with a unit', edit: (d) => set(d, 'server.maxRecvBytes', '10MiB'), path: 'server.maxRecvBytes', message: /number of bytes$/ },
    { name: 'unlimited server maxRecvBytes', edit: (d) => set(d, 'server.maxRecvBytes', 'unlimited'), path: 'server.maxRecvBytes', message: /number of bytes/ },
    { name: 'negative maxSendBytes', edit: (d) => set(d, 'server.maxSendBytes', -1), path: 'server.maxSendBytes', message: /integer from 1/ },
    { name: 'negative shutdown timeout', edit: (d) => set(d, 'server.shutdownTimeoutMs', -1), path: 'server.shutdownTimeoutMs', message: /integer from 0/ },
    { name: 'timeout beyond Node timers', edit: (d) => set(d, 'server.shutdownTimeoutMs', 2 ** 31), path: 'server.shutdownTimeoutMs', message: /2147483647/ },
    { name: 'missing upstream', edit: (d) => set(d, 'upstream', undefined), path: 'upstream', message: /is required/ },
    { name: 'no endpoints', edit: (d) => set(d, 'upstream.endpoints', []), path: 'upstream.endpoints', message: /at least one/ },
    { name: 'missing endpoints', edit: (d) => set(d, 'upstream.endpoints', undefined), path: 'upstream.endpoints', message: /is required/ },
    { name: 'second endpoint over http', edit: (d) => set(d, 'upstream.endpoints', ['https://a:1', 'http://b:2']), path: 'upstream.endpoints[1]', message: /^must be an https:\/\/ URL$/ },
    { name: 'endpoint with a path', edit: (d) => set(d, 'upstream.endpoints', ['https://a:1/v3']), path: 'upstream.endpoints[0]', message: /path/ },
    { name: 'endpoint with a bad port', edit: (d) => set(d, 'upstream.endpoints', ['https://a:99999']), path: 'upstream.endpoints[0]', message: /not a valid URL/ },
    { name: 'endpoint not a string', edit: (d) => set(d, 'upstream.endpoints', [12379]), path: 'upstream.endpoints[0]', message: /got a number/ },
    { name: 'repeated endpoint', edit: (d) => set(d, 'upstream.endpoints', ['https://a:1', 'https://a:1/']), path: 'upstream.endpoints[1]', message: /repeats/ },
    { name: 'missing upstream CA', edit: (d) => set(d, 'upstream.tls.ca', undefined), path: 'upstream.tls.ca', message: /is required/ },
    { name: 'upstream cert without key', edit: (d) => set(d, 'upstream.tls.cert', 'pki/client.crt'), path: 'upstream.tls.key', message: /required when cert is given/ },
    { name: 'upstream key without cert', edit: (d) => set(d, 'upstream.tls.key', 'pki/client.key'), path: 'upstream.tls.cert', message: /required when key is given/ },
    { name: 'serverName not a string', edit: (d) => set(d, 'upstream.tls.serverName', 42), path: 'upstream.tls.serverName', message: /must be a string/ },
    { name: 'keepalive under etcd minimum', edit: (d) => set(d, 'upstream.keepaliveTimeMs', 1000), path: 'upstream.keepaliveTimeMs', message: /from 5000/ },
    { name: 'zero dial timeout', edit: (d) => set(d, 'upstream.dialTimeoutMs', 0), path: 'upstream.dialTimeoutMs', message: /from 1/ },
    { name: 'timeout as a string', edit: (d) => set(d, 'upstream.keepaliveTimeoutMs', '10s'), path: 'upstream.keepaliveTimeoutMs', message: /got a string/ },
    { name: 'health check timeout beyond its interval', edit: (d) => set(d, 'upstream.healthCheck', { intervalMs: 1000, timeoutMs: 2000 }), path: 'upstream.healthCheck.timeoutMs', message: /must not exceed upstream\.healthCheck\.intervalMs \(1000\)/ },
    { name: 'health check interval too short', edit: (d) => set(d, 'upstream.healthCheck', { intervalMs: 10 }), path: 'upstream.healthCheck.intervalMs', message: /from 100/ },
    { name: 'minimum version that is not one', edit: (d) => set(d, 'upstream.versionCheck', { minimumVersions: ['3.5.33', 3.6] }), path: 'upstream.versionCheck.minimumVersions[1]', message: /MAJOR\.MINOR\.PATCH/ },
    { name: 'two minimums for one line', edit: (d) => set(d, 'upstream.versionCheck', { minimumVersions: ['3.5.30', '3.5.33'] }), path: 'upstream.versionCheck.minimumVersions[1]', message: /second minimum for the 3\.5 line/ },
    { name: 'unknown version check key', edit: (d) => set(d, 'upstream.versionCheck', { minimum: '3.5.33' }), path: 'upstream.versionCheck.minimum', message: /unknown key/ },
    { name: 'gateway enabled not a boolean', edit: (d) => set(d, 'gateway.enabled', 'yes'), path: 'gateway.enabled', message: /must be true or false, got a string/ },
    { name: 'gateway header bound too small', edit: (d) => set(d, 'gateway.maxHeaderBytes', 100), path: 'gateway.maxHeaderBytes', message: /from 1024/ },
    { name: 'gateway zero body timeout', edit: (d) => set(d, 'gateway.bodyTimeoutMs', 0), path: 'gateway.bodyTimeoutMs', message: /from 1/ },
    { name: 'gateway unknown key', edit: (d) => set(d, 'gateway.maxBodyBytes', 5), path: 'gateway.maxBodyBytes', message: /unknown/ },
    { name: 'admin on the server port', edit: (d) => set(d, 'admin.listen', '0.0.0.0:2379'), path: 'admin.listen', message: /same address and port/ },
    { name: 'bad admin listen', edit: (d) => set(d, 'admin.listen', '127.0.0.1'), path: 'admin.listen', message: /host:port/ },
    { name: 'admin TLS without key', edit: (d) => set(d, 'admin.tls', { cert: 'pki/server.crt' }), path: 'admin.tls.key', message: /is required/ },
    { name: 'unknown sink scheme', edit: (d) => set(d, 'audit.sink', 'kafka://x:1'), path: 'audit.sink', message: /stdout, file:<path> or syslog\+tls/ },
    { name: 'file sink in a missing directory', edit: (d) => set(d, 'audit.sink', 'file:nowhere/audit.jsonl'), path: 'audit.sink', message: /directory does not exist/ },
    { name: 'file sink on a directory', edit: (d) => set(d, 'audit.sink', 'file:logs'), path: 'audit.sink', message: /not a regular file/ },
    { name: 'syslog sink without port', edit: (d) => set(d, 'audit', { sink: 'syslog+tls://logs', syslog: { ca: 'pki/ca.crt' } }), path: 'audit.sink', message: /host:port/ },
    { name: 'syslog sink without syslog block', edit: (d) => set(d, 'audit.sink', 'syslog+tls://127.0.0.1:6514'), path: 'audit.syslog', message: /is required when/ },
    { name: 'syslog block with stdout sink', edit: (d) => set(d, 'audit.syslog', { ca: 'pki/ca.crt' }), path: 'audit.syslog', message: /only allowed/ },
    { name: 'syslog appName with a space', edit: (d) => set(d, 'audit', { sink: 'syslog+tls://h:1', syslog: { ca: 'pki/ca.crt', appName: 'etcd gate' } }), path: 'audit.syslog.appName', message: /printable/ },
    { name: 'unknown audit level', edit: (d) => set(d, 'audit.level', 'full'), path: 'audit.level', message: /none, metadata/ },
    { name: 'unknown group level', edit: (d) => set(d, 'audit.level', { write: 'request' }), path: 'audit.level.write', message: /none, metadata/ },
    { name: 'audit level as a list', edit: (d) => set(d, 'audit.level', ['none']), path: 'audit.level', message: /or a mapping/ },
    { name: 'bad onFailure', edit: (d) => set(d, 'audit.onFailure', 'ignore'), path: 'audit.onFailure', message: /deny, allow/ },
    { name: 'zero buffer', edit: (d) => set(d, 'audit.bufferRecords', 0), path: 'audit.bufferRecords', message: /from 1/ },
    { name: 'bad log level', edit: (d) => set(d, 'log.level', 'verbose'), path: 'log.level', message: /fatal, error, warn, info/ },
    { name: 'missing policy', edit: (d) => set(d, 'policy', undefined), path: 'policy', message: /is required/ },
    { name: 'policy file missing', edit: (d) => set(d, 'policy', 'policy.missing.yaml'), path: 'policy', message: /file does not exist: .*policy\.missing\.yaml/ },
    { name: 'policy as a number', edit: (d) => set(d, 'policy', 7), path: 'policy', message: /file path or a mapping/ },
    { name: 'unknown root key', edit: (d) => set(d, 'sever', {}), path: 'sever', message: /did you mean "server"/ },
    { name: 'unknown nested key', edit: (d) => set(d, 'server.tls.clientCa', 'pki/ca.crt'), path: 'server.tls.clientCa', message: /did you mean "clientCA"/ },
    { name: 'unknown key far from any', edit: (d) => set(d, 'upstream.tls.sni', 'x'), path: 'upstream.tls.sni', message: /expected one of: ca, cert, key, serverName/ },
    { name: 'unknown audit level group', edit: (d) => set(d, 'audit.level', { reads: 'none' }), path: 'audit.level.reads', message: /did you mean "read"/ },
    { name: 'unknown log key', edit: (d) => set(d, 'log.format', 'json'), path: 'log.format', message: /unknown key/ },
  ];

  it.each(cases)('$name -> $path', ({ edit, path: fieldPath, message }) => {
    const doc = minimal();
    edit(doc);
    const issues = issuesOf(() => parse(doc));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.path).toBe(fieldPath);
    expect(issues[0]?.message).toMatch(message);
  });
});

describe('reporting', () => {
  it('reports several mistakes at once, in one ConfigError whose message has one line per issue', () => {
    const doc = minimal();
    set(doc, 'server.listen', 'nope');
    set(doc, 'server.tls.cert', 'pki/missing.crt');
    set(doc, 'upstream.endpoints', ['https://a:1', 'http://b:2']);
    set(doc, 'upstream.keepaliveTimeMs', 10);
    set(doc, 'audit.onFailure', 'maybe');
    set(doc, 'extra', true);
    let caught: unknown;
    try {
      parse(doc);
    } catch (error: unknown) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(ConfigError);
    const error = caught as ConfigError;
    expect(error.issues.map((i) => i.path).sort()).toEqual(
      ['audit.onFailure', 'extra', 'server.listen', 'server.tls.cert', 'upstream.endpoints[1]', 'upstream.keepaliveTimeMs'].sort(),
    );
    const lines = error.message.split('\n');
    expect(lines).toHaveLength(6);
    expect(lines).toContain('upstream.endpoints[1]: must be an https:// URL');
    for (const line of lines) expect(line).toMatch(/^[\w.[\]<>]+: \S/);
  });

  it('reports each missing file with its absolute path', () => {
    const doc = minimal();
    set(doc, 'server.tls.cert', 'a.crt');
    set(doc, 'server.tls.key', 'b.key');
    set(doc, 'upstream.tls.ca', 'c.crt');
    const issues = issuesOf(() => parse(doc));
    expect(issues).toEqual([
      { path: 'server.tls.cert', message: `file does not exist: ${path.join(dir, 'a.crt')}` },
      { path: 'server.tls.key', message: `file does not exist: ${path.join(dir, 'b.key')}` },
      { path: 'upstream.tls.ca', message: `file does not exist: ${path.join(dir, 'c.crt')}` },
    ]);
  });

  it('reports the required sections of an empty document', () => {
    const issues = issuesOf(() => loadConfigText('', '', dir));
    expect(issues.map((i) => i.path)).toEqual(['server', 'upstream', 'policy']);
  });

  it('rejects a document that is not a mapping', () => {
    const issues = issuesOf(() => loadConfigText('- a\n- b\n', '', dir));
    expect(issues).toEqual([{ path: ROOT_PATH, message: 'must be a mapping of settings, got a list' }]);
  });

  it('turns a YAML syntax error into a ConfigError naming the line', () => {
    const text = 'server:\n  listen: 127.0.0.1:2379\n  tls: [unclosed\nupstream: {}\n';
    const issues = issuesOf(() => loadConfigText(text, '/etc/x.yaml', dir));
    expect(issues.length).toBeGreaterThan(0);
    expect(issues[0]?.path).toBe(ROOT_PATH);
    expect(issues[0]?.message).toMatch(/^YAML syntax error at line \d+, column \d+: /);
  });

  it('treats a duplicated key as a YAML error at its line', () => {
    const issues = issuesOf(() => loadConfigText(`${MINIMAL_YAML}policy: other.yaml\n`, '', dir));
    expect(issues).toHaveLength(1);
    expect(issues[0]?.message).toMatch(/line 10, column 1/);
  });

  it('reports an unreadable config file as a ConfigError', () => {
    const missing = path.join(dir, 'absent.yaml');
    const issues = issuesOf(() => loadConfig(missing));
    expect(issues).toEqual([{ path: ROOT_PATH, message: `cannot read config file ${missing} (ENOENT)` }]);
  });

  it('reports a __proto__ key as unknown instead of letting it change the prototype', () => {
    const issues = issuesOf(() => loadConfigText(`${MINIMAL_YAML}__proto__: { polluted: true }\n`, '', dir));
    expect(issues.map((i) => i.path)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>)['polluted']).toBeUndefined();
  });
});

describe('config/etcdgate.example.yaml', () => {
  it('stays a valid config when the dev PKI files and the policy exist', () => {
    const example = fileURLToPath(new URL('../config/etcdgate.example.yaml', import.meta.url));
    const root = path.join(dir, 'example');
    const out = path.join(root, 'certs-dev', 'out');
    fs.mkdirSync(out, { recursive: true });
    fs.mkdirSync(path.join(root, 'config'));
    for (const name of ['ca.crt', 'etcdgate-server.crt', 'etcdgate-server.key', 'upstream-client.crt', 'upstream-client.key']) {
      fs.writeFileSync(path.join(out, name), 'placeholder\n');
    }
    fs.writeFileSync(path.join(root, 'config', 'policy.dev.yaml'), 'placeholder\n');
    const source = path.join(root, 'config', 'etcdgate.example.yaml');
    const config = loadConfigText(fs.readFileSync(example, 'utf8'), source, path.dirname(source));
    expect(config.server.listen).toEqual({ host: '127.0.0.1', port: 2379 });
    expect(config.server.tls.cert).toBe(path.join(out, 'etcdgate-server.crt'));
    expect(config.upstream.endpoints).toEqual(['https://127.0.0.1:12379']);
    expect(config.upstream.tls).toEqual({
      ca: path.join(out, 'ca.crt'),
      cert: path.join(out, 'upstream-client.crt'),
      key: path.join(out, 'upstream-client.key'),
    });
    expect(config.admin.listen).toEqual({ host: '127.0.0.1', port: 9091 });
    expect(config.audit.sink).toEqual({ kind: 'stdout' });
    expect(config.policy).toEqual({ kind: 'file', path: path.join(root, 'config', 'policy.dev.yaml') });
  });
});

describe('the loaded Config is deep-frozen', () => {
  it('cannot be modified at any depth, and does not freeze the caller document', () => {
    const doc = minimal();
    set(doc, 'policy', { rules: [{ name: 'r', keys: ['/a/'] }] });
    set(doc, 'upstream.endpoints', ['https://a:1', 'https://b:2']);
    const config = parse(doc);
    const document = (config.policy as { kind: 'inline'; document: { rules: { keys: string[] }[] } }).document;
    const nodes: unknown[] = [
      config,
      config.server,
      config.server.listen,
      config.server.tls,
      config.server.advertiseClientUrls,
      config.upstream.endpoints,
      config.upstream.tls,
      config.admin.listen,
      config.audit.sink,
      config.audit.level,
      config.log,
      config.policy,
      document,
      document.rules,
      document.rules[0],
      document.rules[0]?.keys,
    ];
    for (const node of nodes) expect(Object.isFrozen(node)).toBe(true);

    // ES modules run in strict mode, where writing to a frozen object throws.
    expect(() => {
      (config.server.listen as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => {
      (config.upstream.endpoints as string[]).push('https://c:3');
    }).toThrow(TypeError);
    expect(() => {
      document.rules[0]?.keys.push('/b/');
    }).toThrow(TypeError);
    expect(config.upstream.endpoints).toEqual(['https://a:1', 'https://b:2']);

    // The caller's own objects stay theirs.
    expect(Object.isFrozen(doc)).toBe(false);
    expect(Object.isFrozen(doc['policy'])).toBe(false);
  });

  it('freezes the issues of a ConfigError too', () => {
    const error = new ConfigError([{ path: 'a', message: 'b' }], '');
    expect(Object.isFrozen(error.issues)).toBe(true);
    expect(error.message).toBe('a: b');
  });
});
