/**
 * check-config loads every piece of TLS material the way the start does: a key that does
 * not belong to its certificate, a garbage certificate, CA bundle or CRL, in any section
 * (server, upstream, admin, audit.syslog), makes `check-config` and the start itself
 * (`etcdgate --config`, run once per section) both exit with status 2 and name the field. A good config passes,
 * as `check-config FILE` and as `check-config --config FILE`. Runs the built CLI.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { makePki, type Pki } from './support/pki.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = path.join(root, 'dist/src/main.js');

let pki: Pki;
let dir: string;
let garbage: string;

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    // A start that unexpectedly succeeds is ended by the timeout (and then fails the status check).
    execFile(process.execPath, [cli, ...args], { cwd: root, timeout: 15_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

/** A config over the test PKI, with `patch` applied to its sections. */
async function config(name: string, patch: (doc: Record<string, Record<string, unknown>>) => void): Promise<string> {
  const doc: Record<string, Record<string, unknown>> = {
    server: {
      listen: '127.0.0.1:0',
      advertiseClientUrls: ['https://127.0.0.1:2379'],
      tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca },
    },
    upstream: { endpoints: ['https://127.0.0.1:1'], tls: { ca: pki.ca, cert: pki.upstreamClient.cert, key: pki.upstreamClient.key } },
    admin: { listen: '127.0.0.1:0' },
    policy: { roles: { r: { capabilities: ['status'] } }, bindings: [{ match: { cn: 'x' }, roles: ['r'] }] } as unknown as Record<string, unknown>,
  };
  patch(doc);
  const file = path.join(dir, `${name}.yaml`);
  await writeFile(file, stringify(doc));
  return file;
}

const tls = (doc: Record<string, Record<string, unknown>>, section: string): Record<string, unknown> => {
  const value = doc[section]?.['tls'];
  if (typeof value !== 'object' || value === null) throw new Error(`no ${section}.tls`);
  return value as Record<string, unknown>;
};

beforeAll(async () => {
  pki = await makePki();
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-check-tls-'));
  garbage = path.join(dir, 'garbage.pem');
  await writeFile(garbage, '-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n');
}, 60_000);

afterAll(async () => {
  await pki?.remove();
  await rm(dir, { recursive: true, force: true });
});

describe('check-config and the start load the TLS material alike', () => {
  it('accepts a good config, given as FILE or as --config FILE', async () => {
    const file = await config('good', () => undefined);
    for (const args of [['check-config', file], ['check-config', '--config', file]]) {
      const result = await run(args);
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toContain(`${file}: OK (policy `);
    }
    const none = await run(['check-config']);
    expect(none.code).toBe(2);
  });

  /** `start`: also start etcdgate with it (each start costs a Node process; one per section is enough). */
  const broken: ReadonlyArray<{ name: string; patch: (doc: Record<string, Record<string, unknown>>) => void; says: string; start?: true }> = [
    {
      name: 'server key of another certificate',
      patch: (doc) => (tls(doc, 'server')['key'] = pki.client('tenant-a').key),
      says: 'server.tls.key: does not match server.tls.cert',
      start: true,
    },
    { name: 'garbage server certificate', patch: (doc) => (tls(doc, 'server')['cert'] = garbage), says: 'server.tls.cert: certificate 1 of the file does not parse' },
    { name: 'a key file that holds a certificate', patch: (doc) => (tls(doc, 'server')['key'] = pki.gateServer.cert), says: 'server.tls.key: not a usable PEM private key' },
    { name: 'garbage client CA bundle', patch: (doc) => (tls(doc, 'server')['clientCA'] = garbage), says: 'server.tls.clientCA: ' },
    { name: 'a CRL that is no CRL', patch: (doc) => (tls(doc, 'server')['crl'] = pki.ca), says: 'server.tls.crl: not a usable PEM CRL' },
    {
      name: 'upstream key of another certificate',
      patch: (doc) => (tls(doc, 'upstream')['key'] = pki.gateServer.key),
      says: 'upstream.tls.key: does not match upstream.tls.cert',
      start: true,
    },
    { name: 'garbage upstream CA', patch: (doc) => (tls(doc, 'upstream')['ca'] = garbage), says: 'upstream.tls.ca: ' },
    {
      name: 'admin TLS key of another certificate',
      patch: (doc) => ((doc['admin'] ?? {})['tls'] = { cert: pki.gateServer.cert, key: pki.etcdServer.key }),
      says: 'admin.tls.key: does not match admin.tls.cert',
      start: true,
    },
    {
      name: 'garbage syslog CA',
      patch: (doc) => (doc['audit'] = { sink: 'syslog+tls://127.0.0.1:1', syslog: { ca: garbage } }),
      says: 'audit.syslog.ca: ',
      start: true,
    },
  ];

  it.each(broken)('$name: exit 2 naming the field', async ({ name, patch, says, start }) => {
    const file = await config(name.replaceAll(' ', '-'), patch);
    const [checked, started] = await Promise.all([run(['check-config', file]), start === true ? run(['--config', file]) : undefined]);
    expect(checked.code, checked.stdout).toBe(2);
    expect(checked.stderr).toContain(`\n  ${says}`);
    expect(checked.stdout).toBe('');
    if (started === undefined) return;
    expect(started.code, started.stderr).toBe(2);
    expect(started.stderr).toContain(`\n  ${says}`);
  });
});
