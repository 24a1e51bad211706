/**
 * etcdctl (the Go client) through etcdgate to a real etcd: every family of RPC an
 * operator uses works unchanged except for the endpoint, and clients without a
 * certificate from the configured CA are refused at the handshake.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { etcdctl, readLines, spawnEtcdctl, type EtcdctlOptions } from './support/etcdctl.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack();
let root: EtcdctlOptions;

beforeAll(() => {
  root = { endpoint: stack.gate.endpoint, cacert: stack.pki.ca, ...stack.pki.client('root') };
});

async function ok(args: string[], input?: string): Promise<string> {
  const result = await etcdctl(args, { ...root, ...(input === undefined ? {} : { input }) });
  expect(result.code, result.stderr).toBe(0);
  return result.stdout;
}

describe('etcdctl through etcdgate', () => {
  it('puts, gets by prefix and deletes', async () => {
    expect(await ok(['put', '/app/a', '1'])).toBe('OK\n');
    await ok(['put', '/app/b', '2']);
    await ok(['put', '/other', '3']);
    expect(await ok(['get', '--prefix', '/app/'])).toBe('/app/a\n1\n/app/b\n2\n');
    expect(await ok(['get', '--prefix', '--keys-only', '/app/'])).toBe('/app/a\n\n/app/b\n\n');
    expect(await ok(['del', '--prefix', '/app/'])).toBe('2\n');
    expect(await ok(['get', '--prefix', '/app/'])).toBe('');
  });

  it('runs a transaction with compares and both branches', async () => {
    await ok(['put', '/txn/k', 'v1']);
    const out = await ok(['txn'], 'value("/txn/k") = "v1"\n\nput /txn/k v2\n\nput /txn/k failed\n\n');
    expect(out).toMatch(/^SUCCESS/u);
    expect(await ok(['get', '--print-value-only', '/txn/k'])).toBe('v2\n');
  });

  it('watches a prefix and sees events', async () => {
    const watcher = spawnEtcdctl(['watch', '--prefix', '/watched/'], root);
    try {
      // etcdctl prints nothing until an event; retry puts until the watcher is in place.
      const seen = readLines(watcher, (line) => line === 'value-1', 15_000);
      for (let i = 0; i < 10 && !watcher.lines.includes('value-1'); i += 1) {
        await ok(['put', '/watched/x', 'value-1']);
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
      const lines = await seen;
      expect(lines).toContain('PUT');
      expect(lines).toContain('/watched/x');
    } finally {
      await watcher.stop();
    }
  });

  it('grants, keeps alive, inspects and revokes a lease', async () => {
    const granted = await ok(['lease', 'grant', '60']);
    const id = /lease ([0-9a-f]+) granted/u.exec(granted)?.[1];
    expect(id).toBeDefined();
    await ok(['put', '--lease', id!, '/leased/k', 'v']);
    expect(await ok(['lease', 'keep-alive', '--once', id!])).toMatch(/keepalived with TTL/u);
    expect(await ok(['lease', 'timetolive', '--keys', id!])).toMatch(/attached keys\(\[\/leased\/k\]\)/u);
    expect(await ok(['lease', 'list'])).toContain(id!);
    expect(await ok(['lease', 'revoke', id!])).toMatch(/revoked/u);
    expect(await ok(['get', '/leased/k'])).toBe('');
  });

  it('takes a lock and runs an election', async () => {
    expect(await ok(['lock', '/locks/job', 'echo', 'held'])).toMatch(/held/u);
    const elect = spawnEtcdctl(['elect', '/elections/leader', 'me'], root);
    try {
      const lines = await readLines(elect, (line) => line === 'me', 15_000);
      expect(lines.some((line) => line.startsWith('/elections/leader/'))).toBe(true);
    } finally {
      await elect.stop();
    }
  });

  it("answers member list with etcdgate's advertised URL, not etcd's", async () => {
    const out = await ok(['member', 'list']);
    expect(out).toContain('https://127.0.0.1:32379');
    expect(out).not.toContain(stack.etcd.endpoints[0]!);
  });

  it('reports endpoint status, alarms, compacts and defragments', async () => {
    expect(await ok(['endpoint', 'status', '-w', 'json'])).toMatch(/"leader"/u);
    expect(await ok(['alarm', 'list'])).toBe('');
    const revision = /"revision":(\d+)/u.exec(await ok(['get', '/txn/k', '-w', 'json']))?.[1];
    expect(await ok(['compaction', revision!])).toMatch(/compacted revision/u);
    expect(await ok(['defrag'])).toMatch(/Finished defragmenting/u);
  });

  it('saves a snapshot that etcdctl snapshot status accepts', async () => {
    const file = path.join(stack.pki.dir, 'snap.db');
    expect(await ok(['snapshot', 'save', file])).toMatch(/Snapshot saved/u);
    expect(existsSync(file)).toBe(true);
    const status = await etcdctl(['snapshot', 'status', file, '-w', 'json'], root);
    expect(status.code).toBe(0);
    expect(JSON.parse(status.stdout)).toMatchObject({ totalKey: expect.any(Number) });
  });

  it('refuses a client certificate from another CA at the handshake', async () => {
    const result = await etcdctl(['get', 'x'], { endpoint: stack.gate.endpoint, cacert: stack.pki.ca, ...stack.pki.client('rogue'), timeoutMs: 4_000 });
    expect(result.code).not.toBe(0);
    expect(await ok(['get', '--print-value-only', '/txn/k'])).toBe('v2\n');
  });
});
