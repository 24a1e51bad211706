/**
 * The `encryption` section: optional (off when absent), shaped like Kubernetes'
 * EncryptionConfiguration, inline or in its own file; every mistake is reported at its
 * field path, and every key file is checked when the config is read: missing, not 32
 * bytes of base64, or accessible by group or others. `etcdgate check-config` reports
 * the same problems and exits 2, naming files and never printing a key.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadEncryptionFile } from '../src/config/encryption-section.js';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { makeKeyDir, type KeyDir } from './support/encryption-keys.js';

const run = promisify(execFile);
const MAIN = fileURLToPath(new URL('../dist/src/main.js', import.meta.url));

let dir: string;
let keys: KeyDir;
let good: string;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdgate-encryption-config-'));
  for (const name of ['ca.crt', 'server.crt', 'server.key']) fs.writeFileSync(path.join(dir, name), 'placeholder\n');
  keys = await makeKeyDir();
  good = keys.key('good');
});

afterAll(async () => {
  fs.rmSync(dir, { recursive: true, force: true });
  await keys.remove();
});

function doc(encryption?: unknown): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:2379', advertiseClientUrls: ['https://127.0.0.1:2379'], tls: { cert: 'server.crt', key: 'server.key', clientCA: 'ca.crt' } },
    upstream: { endpoints: ['https://127.0.0.1:12379'], tls: { ca: 'ca.crt' } },
    policy: { roles: {}, bindings: [] },
    ...(encryption === undefined ? {} : { encryption }),
  };
}

function issuesOf(encryption: unknown): string[] {
  try {
    parseConfig(doc(encryption), { source: '', baseDir: dir });
  } catch (error: unknown) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
}

const resource = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  name: 'secrets',
  prefixes: ['/secret/'],
  providers: [{ aesgcm: { keys: [{ name: 'k1', file: good }] } }, { identity: {} }],
  ...extra,
});

describe('the encryption section', () => {
  it('is off when absent', () => {
    expect(parseConfig(doc(), { source: '', baseDir: dir }).encryption).toBeUndefined();
  });

  it('takes resources with prefixes, ranges and ordered providers, key files resolved against the config', () => {
    const relative = path.relative(dir, good);
    const config = parseConfig(
      doc({ resources: [resource({ ranges: [{ start: '/a', end: '/b' }], providers: [{ secretbox: { keys: [{ name: 'k1', file: relative }] } }, { aesgcm: { keys: [{ name: 'old', file: good }] } }, { identity: null }] })] }),
      { source: '', baseDir: dir },
    );
    expect(config.encryption).toEqual({
      resources: [
        {
          name: 'secrets',
          prefixes: ['/secret/'],
          ranges: [{ start: '/a', end: '/b' }],
          providers: [{ kind: 'secretbox', keys: [{ name: 'k1', file: good }] }, { kind: 'aesgcm', keys: [{ name: 'old', file: good }] }, { kind: 'identity' }],
        },
      ],
    });
    expect(Object.isFrozen(config.encryption?.resources[0]?.providers[0])).toBe(true);
  });

  it('checks every key file: missing, wrong size, not base64, accessible by group or others', () => {
    const short = path.join(keys.dir, 'short');
    fs.writeFileSync(short, Buffer.alloc(16, 1).toString('base64'), { mode: 0o600 });
    const notBase64 = path.join(keys.dir, 'raw');
    fs.writeFileSync(notBase64, Buffer.alloc(32, 0x41), { mode: 0o600 });
    const open = keys.key('open');
    fs.chmodSync(open, 0o640);
    const provider = (file: string) => ({ aesgcm: { keys: [{ name: 'k', file }] } });
    const at = (i: number) => `encryption.resources[0].providers[${i}].aesgcm.keys[0].file`;
    const issues = (file: string) => issuesOf({ resources: [resource({ providers: [provider(file)] })] });
    expect(issues(path.join(keys.dir, 'absent'))).toEqual([`${at(0)}: key file does not exist: ${path.join(keys.dir, 'absent')}`]);
    expect(issues(short)[0]).toMatch(new RegExp(`^${escape(at(0))}: key file must hold exactly 32 bytes in base64`, 'u'));
    expect(issues(notBase64)[0]).toContain('must hold exactly 32 bytes in base64');
    expect(issues(open)).toEqual([`${at(0)}: key file is accessible by its group or by others (mode 640; it must be 600 or 400): ${open}`]);
  });

  it('reports each structural mistake at its path', () => {
    const k = { name: 'k', file: good };
    expect(issuesOf({})).toEqual(['encryption.resources: is required (a list of resources)']);
    expect(issuesOf({ resources: [resource({ providers: [{ aescbc: { keys: [k] } }] })] })).toEqual([
      'encryption.resources[0].providers[0].aescbc: unknown key (expected one of: aesgcm, secretbox, identity)',
      'encryption.resources[0].providers[0]: must name exactly one provider (aesgcm, secretbox, identity)',
    ]);
    // Keys live in files: a Kubernetes-style inline secret is refused.
    expect(issuesOf({ resources: [resource({ providers: [{ aesgcm: { keys: [{ name: 'k', secret: 'c2VjcmV0' }] } }] })] })).toEqual([
      'encryption.resources[0].providers[0].aesgcm.keys[0].secret: unknown key (expected one of: name, file)',
      'encryption.resources[0].providers[0].aesgcm.keys[0].file: is required (a file holding the key in base64; keys are never written inline)',
    ]);
    expect(issuesOf({ resources: [resource({ providers: [{ aesgcm: { keys: [k, k] } }] })] })).toEqual(['encryption.resources[0].providers[0].aesgcm.keys[1].name: duplicate key name "k"']);
    expect(issuesOf({ resources: [resource({ providers: [{ identity: {} }, { identity: {} }] })] })).toEqual(['encryption.resources[0].providers[1]: provider identity is listed twice (put all its keys in one entry)']);
    expect(issuesOf({ resources: [resource({ providers: [] })] })).toEqual(['encryption.resources[0].providers: must be a non-empty list of providers']);
    expect(issuesOf({ resources: [resource({ prefixes: undefined })] })).toEqual(['encryption.resources[0]: needs prefixes or ranges (the keys whose values are encrypted)']);
    expect(issuesOf({ resources: [resource({ name: 'Secrets!' })] })).toEqual(['encryption.resources[0].name: must be 1-63 characters of a-z, 0-9, "_" and "-", starting with a letter or digit']);
    expect(issuesOf({ resources: [resource({ ranges: [{ start: '/b', end: '/a' }] })] })).toEqual(["encryption.resources[0].ranges[0].end: must sort after start (ranges are [start, end) over the keys' bytes)"]);
    expect(issuesOf({ resources: [resource({ providers: [{ aesgcm: { keys: [{ name: 'a:b', file: good }] } }] })] })).toEqual(['encryption.resources[0].providers[0].aesgcm.keys[0].name: must be 1-64 characters of A-Z, a-z, 0-9, "_", "." and "-"']);
  });

  it('refuses resources whose ranges overlap, and duplicate names', () => {
    expect(issuesOf({ resources: [resource(), resource({ name: 'other', prefixes: ['/secret/deeper/'] })] })).toEqual(['encryption.resources[1]: its key ranges overlap those of encryption.resources[0]']);
    expect(issuesOf({ resources: [resource(), resource({ prefixes: ['/else/'] })] })).toEqual(['encryption.resources[1].name: duplicate resource name "secrets"']);
    expect(issuesOf({ resources: [resource(), resource({ name: 'next', prefixes: ['/secret0'] })] })).toEqual([]);
  });

  it('may live in its own file, read at load and again on reload', () => {
    const file = path.join(dir, 'encryption.yaml');
    fs.writeFileSync(file, stringify({ resources: [resource()] }));
    const config = parseConfig(doc('encryption.yaml'), { source: '', baseDir: dir });
    expect(config.encryption?.file).toBe(file);
    expect(config.encryption?.resources[0]?.name).toBe('secrets');
    expect(loadEncryptionFile(file)).toEqual(config.encryption);
    fs.writeFileSync(file, stringify({ resources: [resource({ providers: [] })] }));
    expect(issuesOf('encryption.yaml')).toEqual([`encryption.resources[0].providers: must be a non-empty list of providers (in ${file})`]);
    expect(() => loadEncryptionFile(file)).toThrow(ConfigError);
    expect(issuesOf('absent.yaml')).toEqual([`encryption: cannot read the encryption file ${path.join(dir, 'absent.yaml')}`]);
  });
});

describe('etcdgate check-config', () => {
  it('reports a key file accessible by others with its field path and exits 2; a good one passes', async () => {
    const open = keys.key('check-open');
    fs.chmodSync(open, 0o644);
    const secret = fs.readFileSync(open, 'utf8').trim();
    const write = (file: string): string => {
      const config = path.join(dir, `check-${path.basename(file)}.yaml`);
      fs.writeFileSync(config, stringify(doc({ resources: [resource({ providers: [{ aesgcm: { keys: [{ name: 'k', file }] } }] })] })));
      return config;
    };
    const bad = await run(process.execPath, [MAIN, 'check-config', write(open)]).then(
      () => ({ code: 0, stdout: '', stderr: '' }),
      (error: { code: number; stdout: string; stderr: string }) => error,
    );
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain(`encryption.resources[0].providers[0].aesgcm.keys[0].file: key file is accessible by its group or by others (mode 644; it must be 600 or 400): ${open}`);
    expect(bad.stderr + bad.stdout).not.toContain(secret);
    const ok = await run(process.execPath, [MAIN, 'check-config', write(good)]);
    expect(ok.stdout).toContain('OK');
    expect(ok.stdout).toContain('encryption: 1 resource');
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/gu, '\\$&');
}
