/**
 * A fresh development PKI per test file, made by certs-dev/generate.sh in its own temp
 * dir so parallel test files never share keys. See certs-dev/README.md for the files.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** Client certificates generate.sh makes (files client-NAME.crt/.key). */
export const CLIENT_NAMES = [
  'kube-apiserver',
  'tenant-a',
  'tenant-b',
  'backup',
  'auditor',
  'admin',
  'nobody',
  'root',
  'rogue',
] as const;

/** One of CLIENT_NAMES. */
export type ClientName = (typeof CLIENT_NAMES)[number];

/** Absolute paths to one PEM certificate and its key. */
export interface CertPair {
  readonly cert: string;
  readonly key: string;
}

/** Absolute paths of every file of one generated PKI. */
export interface Pki {
  readonly dir: string;
  /** The CA etcd and etcdgate trust. */
  readonly ca: string;
  readonly caKey: string;
  /** An unrelated CA (issuer of the "rogue" client). */
  readonly otherCa: string;
  readonly etcdServer: CertPair;
  readonly gateServer: CertPair;
  /** etcdgate's client certificate towards etcd (no CN). */
  readonly upstreamClient: CertPair;
  /** Paths of client-NAME.crt/.key; throws for a name generate.sh does not make. */
  client(name: string): CertPair;
  /** Deletes the directory. */
  remove(): Promise<void>;
}

const script = fileURLToPath(new URL('../../certs-dev/generate.sh', import.meta.url));

function isClientName(name: string): name is ClientName {
  return (CLIENT_NAMES as readonly string[]).includes(name);
}

/** Generates a new PKI into a fresh temp dir and returns its paths. */
export async function makePki(): Promise<Pki> {
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-pki-'));
  try {
    await run('bash', [script, dir]);
  } catch (err: unknown) {
    await rm(dir, { recursive: true, force: true });
    throw new Error(`certs-dev/generate.sh failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const pair = (base: string): CertPair => ({
    cert: path.join(dir, `${base}.crt`),
    key: path.join(dir, `${base}.key`),
  });
  return {
    dir,
    ca: path.join(dir, 'ca.crt'),
    caKey: path.join(dir, 'ca.key'),
    otherCa: path.join(dir, 'other-ca.crt'),
    etcdServer: pair('etcd-server'),
    gateServer: pair('etcdgate-server'),
    upstreamClient: pair('upstream-client'),
    client(name: string): CertPair {
      if (!isClientName(name)) throw new Error(`unknown client certificate "${name}"`);
      return pair(`client-${name}`);
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
