/**
 * Extra certificates over a test PKI's CA, for certificate-lifecycle tests: leaves with
 * chosen validity windows and key usages, a second server certificate (rotation), and
 * CRLs revoking chosen certificates. Everything is made with `openssl ca` over a minimal
 * throwaway CA database inside the PKI's own temp dir, so parallel test files never share one.
 */
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import type { CertPair, Pki } from './pki.js';

const run = promisify(execFile);

/** What a new leaf certificate looks like. */
export interface LeafSpec {
  /** File base name inside the PKI dir (NAME.crt / NAME.key). */
  readonly name: string;
  readonly cn: string;
  /** extendedKeyUsage value, e.g. "clientAuth" or "serverAuth"; null for a certificate without the extension. */
  readonly eku: string | null;
  /** subjectAltName value, e.g. "DNS:localhost, IP:127.0.0.1". */
  readonly san?: string;
  /** openssl ca dates, YYYYMMDDHHMMSSZ; default: now .. now + 30 days. */
  readonly startDate?: string;
  readonly endDate?: string;
}

/** A CA database over the PKI's CA key, able to issue leaves and CRLs. */
export interface TestCa {
  /** Issues a leaf signed by the PKI's CA. */
  issue(spec: LeafSpec): Promise<CertPair>;
  /** Writes a CRL (PEM) revoking `certs` (and everything revoked before) to `out`. */
  crl(revoke: readonly string[], out: string): Promise<string>;
}

/** Formats a Date as openssl ca's YYYYMMDDHHMMSSZ. */
export function caDate(date: Date): string {
  return `${date.toISOString().replace(/[-:T]/gu, '').slice(0, 14)}Z`;
}

/** Sets up a CA database for `pki` in a fresh folder under its dir. */
export async function testCa(pki: Pki): Promise<TestCa> {
  const dir = await mkdtemp(path.join(pki.dir, 'ca-db-'));
  await mkdir(path.join(dir, 'new'));
  await writeFile(path.join(dir, 'index.txt'), '');
  await writeFile(path.join(dir, 'crlnumber'), '1000\n');
  const conf = path.join(dir, 'ca.cnf');
  await writeFile(
    conf,
    [
      '[ ca ]',
      'default_ca = testca',
      '[ testca ]',
      `dir = ${dir}`,
      'database = $dir/index.txt',
      'new_certs_dir = $dir/new',
      `certificate = ${pki.ca}`,
      `private_key = ${pki.caKey}`,
      'crlnumber = $dir/crlnumber',
      'default_md = sha256',
      'default_days = 30',
      'default_crl_days = 30',
      'unique_subject = no',
      'rand_serial = yes',
      'policy = anything',
      'copy_extensions = none',
      '[ anything ]',
      'commonName = supplied',
      '',
    ].join('\n'),
  );
  const env = { ...process.env, OPENSSL_CONF: '/dev/null' };
  let counter = 0;
  return {
    async issue(spec: LeafSpec): Promise<CertPair> {
      counter += 1;
      const key = path.join(pki.dir, `${spec.name}.key`);
      const cert = path.join(pki.dir, `${spec.name}.crt`);
      const csr = path.join(dir, `${spec.name}-${counter}.csr`);
      const ext = path.join(dir, `${spec.name}-${counter}.ext`);
      await writeFile(
        ext,
        [
          '[ leaf ]',
          'basicConstraints = critical, CA:FALSE',
          'keyUsage = critical, digitalSignature, keyEncipherment',
          ...(spec.eku === null ? [] : [`extendedKeyUsage = ${spec.eku}`]),
          'subjectKeyIdentifier = hash',
          'authorityKeyIdentifier = keyid',
          ...(spec.san === undefined ? [] : [`subjectAltName = ${spec.san}`]),
          '',
        ].join('\n'),
      );
      await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { env });
      await run('openssl', ['req', '-new', '-key', key, '-subj', `/CN=${spec.cn}`, '-out', csr], { env });
      const now = new Date();
      await run(
        'openssl',
        [
          'ca', '-config', conf, '-batch', '-notext', '-in', csr, '-out', cert,
          '-extfile', ext, '-extensions', 'leaf',
          '-startdate', spec.startDate ?? caDate(new Date(now.getTime() - 60_000)),
          '-enddate', spec.endDate ?? caDate(new Date(now.getTime() + 30 * 86_400_000)),
        ],
        { env },
      );
      return { cert, key };
    },
    async crl(revoke: readonly string[], out: string): Promise<string> {
      for (const cert of revoke) await run('openssl', ['ca', '-config', conf, '-revoke', cert], { env });
      await run('openssl', ['ca', '-config', conf, '-gencrl', '-out', out], { env });
      return out;
    },
  };
}

/**
 * A clientAuth leaf signed by the PKI's CA with the subject exactly as written (`openssl
 * x509 -req` copies the request's subject verbatim, unlike `openssl ca`, whose policy
 * reorders and drops fields): for subjects with two CNs (`/CN=a/CN=b`), multi-valued RDNs
 * (`/CN=a+CN=b`) or several O and OU values. Files NAME.crt / NAME.key in the PKI dir.
 */
export async function issueWithSubject(pki: Pki, name: string, subject: string, options: { readonly issuer?: CertPair } = {}): Promise<CertPair> {
  const env = { ...process.env, OPENSSL_CONF: '/dev/null' };
  const key = path.join(pki.dir, `${name}.key`);
  const cert = path.join(pki.dir, `${name}.crt`);
  const csr = path.join(pki.dir, `${name}.csr`);
  const ext = path.join(pki.dir, `${name}.ext`);
  await writeFile(ext, ['basicConstraints = critical, CA:FALSE', 'keyUsage = critical, digitalSignature, keyEncipherment', 'extendedKeyUsage = clientAuth', ''].join('\n'));
  await run('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { env });
  await run('openssl', ['req', '-new', '-key', key, '-subj', subject, '-multivalue-rdn', '-out', csr], { env });
  const serial = `0x1${Buffer.from(crypto.getRandomValues(new Uint8Array(15))).toString('hex')}`;
  const issuer = options.issuer ?? { cert: pki.ca, key: pki.caKey };
  await run('openssl', ['x509', '-req', '-in', csr, '-CA', issuer.cert, '-CAkey', issuer.key, '-days', '30', '-set_serial', serial, '-extfile', ext, '-out', cert], { env });
  return { cert, key };
}
