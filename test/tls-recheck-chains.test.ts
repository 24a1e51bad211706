/**
 * The re-check of an open connection's chain (src/tls/recheck.ts) against PKIs made by
 * openssl, including a chain through an intermediate CA that the client presents:
 * a good chain passes (and reports its earliest notAfter); a leaf revoked by the
 * intermediate's CRL, or an intermediate revoked by the root's CRL, is `revoked`; a
 * bundle without the root, or a CRL under the issuer's name that another key signed, is
 * `untrusted`; a time past the leaf's notAfter is `expired`.
 */
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { recheckChain, trustMaterial } from '../src/tls/recheck.js';

const run = promisify(execFile);
const env = { ...process.env, OPENSSL_CONF: '/dev/null' };
let dir = '';
const file = (name: string): string => path.join(dir, name);
const der = async (name: string): Promise<Buffer> => new X509Certificate(await readFile(file(name))).raw;

async function key(name: string): Promise<void> {
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(`${name}.key`)], { env });
}

/** Signs NAME.crt for SUBJECT with ISSUER (self-signed when ISSUER is NAME). */
async function certificate(name: string, subject: string, issuer: string, ca: boolean): Promise<void> {
  await key(name);
  await writeFile(file(`${name}.ext`), ca ? 'basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n' : 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth\n');
  await run('openssl', ['req', '-new', '-key', file(`${name}.key`), '-subj', subject, '-out', file(`${name}.csr`)], { env });
  const signer = issuer === name ? ['-signkey', file(`${name}.key`)] : ['-CA', file(`${issuer}.crt`), '-CAkey', file(`${issuer}.key`)];
  await run('openssl', ['x509', '-req', '-in', file(`${name}.csr`), ...signer, '-days', '30', '-set_serial', `0x${String(Date.now() % 1e9)}${name.length}`, '-extfile', file(`${name}.ext`), '-out', file(`${name}.crt`)], { env });
}

/** A CRL by ISSUER (its certificate and KEY) revoking the given certificates. */
async function crl(out: string, issuerCert: string, issuerKey: string, revoke: string[]): Promise<string> {
  const db = await mkdtemp(path.join(dir, 'db-'));
  await writeFile(path.join(db, 'index.txt'), '');
  await writeFile(path.join(db, 'crlnumber'), '1000\n');
  const conf = path.join(db, 'ca.cnf');
  await writeFile(conf, `[ ca ]\ndefault_ca = c\n[ c ]\ndatabase = ${db}/index.txt\ncrlnumber = ${db}/crlnumber\ncertificate = ${file(issuerCert)}\nprivate_key = ${file(issuerKey)}\ndefault_md = sha256\ndefault_crl_days = 30\n`);
  for (const cert of revoke) await run('openssl', ['ca', '-config', conf, '-revoke', file(cert)], { env });
  await run('openssl', ['ca', '-config', conf, '-gencrl', '-out', file(out)], { env });
  return readFile(file(out), 'utf8');
}

let bundle = '';
let chain: Buffer[] = [];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-recheck-'));
  await certificate('root', '/CN=recheck root', 'root', true);
  await certificate('inter', '/CN=recheck intermediate', 'root', true);
  await certificate('leaf', '/CN=leaf-client', 'inter', false);
  await certificate('impostor', '/CN=recheck intermediate', 'impostor', true);
  bundle = await readFile(file('root.crt'), 'utf8');
  chain = [await der('leaf.crt'), await der('inter.crt')];
}, 60_000);

afterAll(async () => {
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

describe('recheckChain', () => {
  it('passes a chain through a presented intermediate, with its earliest notAfter', async () => {
    const verdict = recheckChain(chain, trustMaterial(bundle, await crl('empty.crl', 'inter.crt', 'inter.key', [])), Date.now());
    expect(verdict).toMatchObject({ ok: true });
    // The earliest over the whole path, root included.
    const path = [...chain, await der('root.crt')];
    if (verdict.ok) expect(verdict.notAfter.getTime()).toBe(Math.min(...path.map((c) => Date.parse(new X509Certificate(c).validTo))));
  });

  it('fails a leaf revoked by the intermediate, and a chain whose intermediate the root revoked', async () => {
    expect(recheckChain(chain, trustMaterial(bundle, await crl('leaf.crl', 'inter.crt', 'inter.key', ['leaf.crt'])), Date.now())).toMatchObject({ ok: false, reason: 'revoked', error: 'certificate revoked' });
    expect(recheckChain(chain, trustMaterial(bundle, await crl('inter.crl', 'root.crt', 'root.key', ['inter.crt'])), Date.now())).toMatchObject({ ok: false, reason: 'revoked' });
  });

  it('fails without the root in the bundle, and without the intermediate presented', async () => {
    expect(recheckChain(chain, trustMaterial(await readFile(file('impostor.crt'), 'utf8'), undefined), Date.now())).toMatchObject({ ok: false, reason: 'untrusted' });
    expect(recheckChain(chain.slice(0, 1), trustMaterial(bundle, undefined), Date.now())).toMatchObject({ ok: false, reason: 'untrusted' });
  });

  it('fails when a CRL under the issuer\'s name was signed by another key', async () => {
    const forged = await crl('forged.crl', 'impostor.crt', 'impostor.key', []);
    expect(recheckChain(chain, trustMaterial(bundle, forged), Date.now())).toMatchObject({ ok: false, reason: 'untrusted', error: expect.stringContaining('does not verify') });
  });

  it('fails past the leaf\'s notAfter', () => {
    expect(recheckChain(chain, trustMaterial(bundle, undefined), Date.now() + 40 * 86_400_000)).toMatchObject({ ok: false, reason: 'expired' });
  });

  it('refuses a CRL file it cannot parse (the reload then keeps the old material)', () => {
    expect(() => trustMaterial(bundle, '-----BEGIN X509 CRL-----\nAAAA\n-----END X509 CRL-----\n')).toThrow();
  });
});
