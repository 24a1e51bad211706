/**
 * etcdgate's reserved prefix `/.etcdgate/` (src/policy/reserved.ts) is written by
 * etcdgate alone: a root role with `all: true` and the `admin` capability may do
 * anything elsewhere, and may read there like anywhere its roles grant, but cannot
 * write, delete, or revoke the lease of a key under it, nor write a range that spans
 * it. Against a real etcd, with the backup slot claims that etcdgate itself keeps
 * there: every write is refused and the claim survives, while etcdgate's own calls (the
 * claims) go on working.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import { etcd3Client } from './support/etcd3-client.js';
import { etcdctl, type EtcdctlOptions } from './support/etcdctl.js';
import { ROOT_ONLY_POLICY, type TestGateway } from './support/gateway.js';
import { key, prefix, range, who } from './support/policy.js';
import { useGatewayStack } from './support/stack.js';

const RESERVED = { allowed: false, rule: 'reserved prefix /.etcdgate/', reason: 'reserved for etcdgate' };

describe('the policy engine', () => {
  const root = compilePolicy(ROOT_ONLY_POLICY).permissionsFor(who({ cn: 'root' }));

  it('lets a root role write everywhere else, up to the prefix and from its end, and read everywhere', () => {
    for (const access of [
      key('write', '/registry/pods/a'),
      key('write', '/.etcdgateX'),
      range('write', '', '/.etcdgate/'),
      range('write', '/.etcdgate0', [0]),
      key('read', '/.etcdgate/'),
      prefix('read', '/.etcdgate/'),
      range('read', [0], [0]),
      prefix('read', '/registry/'),
    ]) {
      expect(root.check([access]), JSON.stringify(access)).toMatchObject({ allowed: true });
    }
  });

  it('refuses it every write under the prefix and every written range that meets it', () => {
    for (const access of [
      key('write', '/.etcdgate/backup/slots/2026-01-01T00:00:00.000Z'),
      key('write', '/.etcdgate/'),
      prefix('write', '/.etcdgate/backup/'),
      range('write', [0], [0]),
      range('write', '/', '0'),
      range('write', '/.etcdgate/x', [0]),
    ]) {
      expect(root.check([access]), JSON.stringify(access)).toMatchObject(RESERVED);
    }
  });

  it('refuses a tenant reading there as anywhere it holds no grant', () => {
    const tenant = compilePolicy({ roles: { t: { keys: [{ prefix: '/t/', access: 'readwrite' }] } }, bindings: [{ match: { cn: 't' }, roles: ['t'] }] }).permissionsFor(who({ cn: 't' }));
    expect(tenant.check([key('read', '/.etcdgate/backup/slots/x')])).toMatchObject({ allowed: false, reason: 'not granted' });
    expect(tenant.check([key('read', '/t/a')])).toMatchObject({ allowed: true });
  });
});

describe('against a real etcd', () => {
  const stack = useGatewayStack({ gateway: false });
  let dir: string;
  let gate: TestGateway;
  let rootCall: EtcdctlOptions;
  let directCall: EtcdctlOptions;
  let claimKey: string;
  let claimLease: string;

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-reserved-'));
    gate = await stack.startGateway({ overrides: { backup: { schedule: { intervalSeconds: 1 }, destinations: [{ directory: dir }] } } });
    rootCall = { endpoint: gate.endpoint, cacert: stack.pki.ca, ...stack.pki.client('root') };
    directCall = { endpoint: stack.etcd.endpoints[0]!, cacert: stack.pki.ca, ...stack.pki.client('root') };
    // A slot claim etcdgate itself wrote, read straight from etcd.
    const claim = await vi.waitFor(
      async () => {
        const got = await etcdctl(['get', '/.etcdgate/backup/slots/', '--prefix', '-w', 'json'], directCall);
        // Lease IDs pass 2^53: read the digits as text, not through JSON numbers.
        const found = /"key":"([^"]+)"[^}]*"lease":(\d+)/u.exec(got.stdout);
        if (found === null) throw new Error('no claim yet');
        return { key: found[1]!, lease: found[2]! };
      },
      { timeout: 15_000, interval: 200 },
    );
    claimKey = Buffer.from(claim.key, 'base64').toString();
    claimLease = BigInt(claim.lease).toString(16);
  }, 60_000);

  afterAll(async () => {
    await gate?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function expectRefused(args: string[]): Promise<void> {
    const result = await etcdctl(args, rootCall);
    expect(result.code, `${args.join(' ')}: ${result.stdout}`).not.toBe(0);
    expect(result.stderr).toContain('permission denied');
  }

  it('root works elsewhere through etcdgate', async () => {
    expect((await etcdctl(['put', '/ok', 'v'], rootCall)).code).toBe(0);
    expect((await etcdctl(['get', '/ok', '--print-value-only'], rootCall)).stdout.trim()).toBe('v');
    const leases = await etcdctl(['lease', 'list'], rootCall);
    expect(leases.code, leases.stderr).toBe(0);
    // It can even see the claim's lease ID (LeaseLeases needs only admin)...
    expect(leases.stdout).toContain(claimLease);
  });

  it('...and read a claim, but not overwrite, pre-claim or delete one, nor revoke its lease', async () => {
    // Reading is the roles' business: root reads the claim and the whole key space.
    const read = await etcdctl(['get', claimKey, '--print-value-only'], rootCall);
    expect(read.code, read.stderr).toBe(0);
    const everything = await etcdctl(['get', '', '--prefix', '--keys-only'], rootCall);
    expect(everything.code, everything.stderr).toBe(0);
    expect(everything.stdout).toContain(claimKey);
    await expectRefused(['put', claimKey, 'stolen']);
    await expectRefused(['put', `/.etcdgate/backup/slots/${new Date(Date.now() + 3_600_000).toISOString()}`, 'blocked']);
    await expectRefused(['del', '/.etcdgate/', '--prefix']);
    await expectRefused(['del', '', '--prefix']);
    // Revoking the lease would delete the claim: it needs write on the keys it holds.
    await expectRefused(['lease', 'revoke', claimLease]);
    const client = etcd3Client(gate.endpoint, stack.pki, 'root');
    try {
      // A Txn that writes the claim in either branch is refused whole.
      await expect(client.if('/ok', 'Create', '==', 0).then(client.put('/ok').value('w')).else(client.delete().key(claimKey)).commit()).rejects.toThrow(/permission denied/u);
    } finally {
      client.close();
    }
    // The claim is untouched in etcd.
    const still = await etcdctl(['get', claimKey, '--print-value-only'], directCall);
    expect(still.stdout.trim()).toMatch(/\/\d+$/u);
    expect((await etcdctl(['get', '/ok', '--print-value-only'], rootCall)).stdout.trim()).toBe('v');
  });

  it('while etcdgate\'s own claims keep landing (they are not subject to the client policy)', async () => {
    const before = (await etcdctl(['get', '/.etcdgate/backup/slots/', '--prefix', '--keys-only'], directCall)).stdout.trim().split('\n').filter(Boolean).length;
    await vi.waitFor(
      async () => {
        const now = (await etcdctl(['get', '/.etcdgate/backup/slots/', '--prefix', '--keys-only'], directCall)).stdout.trim().split('\n').filter(Boolean).length;
        expect(now).toBeGreaterThan(before);
      },
      { timeout: 10_000, interval: 200 },
    );
  });
});
