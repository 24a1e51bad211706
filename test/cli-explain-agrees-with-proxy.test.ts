/**
 * `etcdgate explain` decides like the proxy: for each request below, explain's verdict
 * (from the policy file alone, --policy) is the expected one, and the very request
 * explain built, sent through a real etcdgate in front of a real etcd by the same
 * caller, is refused with PERMISSION_DENIED exactly when explain says DENY. Covered:
 * Txn compares and both branches (compact and file form, nested), prev_kv, --prefix and
 * --from-key, leases named by their attached keys (Put with a lease, LeaseRevoke,
 * LeaseTimeToLive --keys; the keys are really attached in etcd), and capability methods.
 */
import { writeFileSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { explainCommand, parseExplainArgv, toExplainArgs } from '../src/cli/explain-command.js';
import { explainRequest } from '../src/cli/explain-request.js';
import { callEtcd, rawClient, rawUnary } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const POLICY = {
  roles: {
    tenant: {
      keys: [
        { prefix: '/tenants/{cn}/', access: 'readwrite' },
        { prefix: '/shared/', access: 'read' },
        { prefix: '/inbox/', access: 'write' },
      ],
      capabilities: ['lease'],
    },
    root: { keys: [{ all: true, access: 'readwrite' }], capabilities: ['admin'] },
  },
  bindings: [
    { match: { cn: 'tenant-*' }, roles: ['tenant'] },
    { match: { cn: 'root' }, roles: ['root'] },
  ],
};

let dir = '';
let policyFile = '';
// Registered before the stack's own hooks, so the policy file exists when the gateway starts.
beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-explain-'));
  policyFile = path.join(dir, 'policy.yaml');
  await writeFile(policyFile, stringify(POLICY));
});
const stack = useGatewayStack({ policy: () => policyFile });
const clients = new Map<string, grpc.Client>();
/** Leases granted by root, with the keys root attached to them. */
const leases = { foreign: '', own: '', inbox: '' };

function client(name: string): grpc.Client {
  let c = clients.get(name);
  if (c === undefined) {
    c = rawClient(stack.gate.endpoint, stack.pki, name);
    clients.set(name, c);
  }
  return c;
}

/** A lease granted by root with `keys` attached (put by root with the lease). */
async function leaseWith(keys: readonly string[]): Promise<string> {
  const root = client('root');
  const grant = await callEtcd(root, 'Lease', 'LeaseGrant', ['LeaseGrantRequest', { TTL: 300 }], 'LeaseGrantResponse');
  const id = String(grant['ID']);
  for (const key of keys) await callEtcd(root, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v'), lease: id }], 'PutResponse');
  return id;
}

/** explain's exit status and output for `args` (in-process, as the CLI runs it). */
function runExplain(args: readonly string[]): { status: number; output: string } {
  let output = '';
  const status = explainCommand(['--policy', policyFile, ...args], (text) => (output += text));
  return { status, output };
}

/**
 * What the proxy answers to the request explain built from `args`, sent by `caller`:
 * 'allow' when etcd answered, 'deny' for PERMISSION_DENIED; any other status fails the test.
 */
async function proxyVerdict(caller: string, args: readonly string[]): Promise<'allow' | 'deny'> {
  const values = parseExplainArgv(args);
  const request = explainRequest(toExplainArgs(values, values.method ?? ''));
  try {
    await rawUnary(client(caller), request.spec.path, request.message);
    return 'allow';
  } catch (error: unknown) {
    const code = typeof error === 'object' && error !== null && 'code' in error ? error.code : undefined;
    if (code === 7) return 'deny';
    throw error;
  }
}

interface Case {
  readonly name: string;
  readonly caller: string;
  readonly args: () => string[];
  readonly expect: 'allow' | 'deny';
  /** Text explain's output must contain. */
  readonly says?: string;
}

const txnFile = (name: string, body: unknown): string[] => {
  const file = path.join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(body));
  return ['--method', 'Txn', '--txn-file', file];
};

const CASES: readonly Case[] = [
  {
    name: 'Txn on its own keys, both branches',
    caller: 'tenant-a',
    args: () => ['--method', 'Txn', '--txn', 'compare: /tenants/tenant-a/x mod; success: put /tenants/tenant-a/x; failure: range /tenants/tenant-a/ prefix'],
    expect: 'allow',
  },
  {
    name: 'Txn whose failure branch reads another tenant (never run, still checked)',
    caller: 'tenant-a',
    args: () => ['--method', 'Txn', '--txn', 'compare: /tenants/tenant-a/x mod; success: put /tenants/tenant-a/x; failure: range /tenants/tenant-b/x'],
    expect: 'deny',
    says: 'read key /tenants/tenant-b/x -> DENY: not granted',
  },
  {
    name: 'Txn comparing another tenant’s key (a compare reads)',
    caller: 'tenant-a',
    args: () => ['--method', 'Txn', '--txn', 'compare: /tenants/tenant-b/x value; success: put /tenants/tenant-a/y'],
    expect: 'deny',
  },
  {
    name: 'Txn with put prev_kv on a write-only key',
    caller: 'tenant-a',
    args: () => ['--method', 'Txn', '--txn', 'success: put /inbox/m prev_kv'],
    expect: 'deny',
    says: 'read key /inbox/m -> DENY',
  },
  {
    name: 'Txn from a file, a nested Txn deleting another tenant’s key',
    caller: 'tenant-a',
    args: () => txnFile('nested-deny', { success: [{ put: '/tenants/tenant-a/z' }, { txn: { success: [{ delete: '/tenants/tenant-b/', prefix: true }] } }] }),
    expect: 'deny',
    says: 'write prefix /tenants/tenant-b/ -> DENY',
  },
  {
    name: 'Txn from a file, nested, all its own',
    caller: 'tenant-a',
    args: () => txnFile('nested-allow', { compare: [{ key: '/tenants/tenant-a/z', target: 'create' }], success: [{ txn: { failure: [{ range: '/shared/a', prefix: true }] } }] }),
    expect: 'allow',
  },
  { name: 'Put without prev_kv on a write-only key', caller: 'tenant-a', args: () => ['--method', 'Put', '--key', '/inbox/m'], expect: 'allow' },
  { name: 'Put with prev_kv on a write-only key', caller: 'tenant-a', args: () => ['--method', 'Put', '--key', '/inbox/m', '--prev-kv'], expect: 'deny' },
  { name: 'Range --prefix of its own prefix', caller: 'tenant-a', args: () => ['--method', 'Range', '--key', '/tenants/tenant-a/', '--prefix'], expect: 'allow' },
  { name: 'Range --prefix of every tenant', caller: 'tenant-a', args: () => ['--method', 'Range', '--key', '/tenants/', '--prefix'], expect: 'deny', says: 'range not fully covered' },
  { name: 'DeleteRange --from-key its own prefix (runs past it)', caller: 'tenant-a', args: () => ['--method', 'DeleteRange', '--key', '/tenants/tenant-a/', '--from-key'], expect: 'deny' },
  {
    name: 'Put attaching its key to a lease that holds another tenant’s key',
    caller: 'tenant-a',
    args: () => ['--method', 'Put', '--key', '/tenants/tenant-a/l', '--lease', leases.foreign, '--lease-key', '/tenants/tenant-b/held'],
    expect: 'deny',
    says: `holds keys outside the grant`,
  },
  {
    name: 'Put attaching its key to a lease that holds only its own keys',
    caller: 'tenant-a',
    args: () => ['--method', 'Put', '--key', '/tenants/tenant-a/l', '--lease', leases.own, '--lease-key', '/tenants/tenant-a/held'],
    expect: 'allow',
  },
  {
    name: 'LeaseRevoke of a lease holding another tenant’s key',
    caller: 'tenant-a',
    args: () => ['--method', 'LeaseRevoke', '--lease', leases.foreign, '--lease-key', '/tenants/tenant-b/held'],
    expect: 'deny',
  },
  {
    name: 'LeaseTimeToLive --keys of a lease holding a write-only key (keys are read)',
    caller: 'tenant-a',
    args: () => ['--method', 'LeaseTimeToLive', '--lease', leases.inbox, '--keys', '--lease-key', '/inbox/held'],
    expect: 'deny',
  },
  {
    name: 'LeaseTimeToLive without --keys (the lease capability only)',
    caller: 'tenant-a',
    args: () => ['--method', 'LeaseTimeToLive', '--lease', leases.inbox],
    expect: 'allow',
  },
  { name: 'Alarm get without the status capability', caller: 'tenant-a', args: () => ['--method', 'Alarm'], expect: 'deny', says: 'capability status' },
  { name: 'Alarm get by an admin', caller: 'root', args: () => ['--method', 'Alarm', '--alarm', 'get'], expect: 'allow' },
  { name: 'Status without the status capability', caller: 'tenant-a', args: () => ['--method', 'Status'], expect: 'deny' },
  { name: 'Status by an admin', caller: 'root', args: () => ['--method', 'Status'], expect: 'allow' },
];

beforeAll(async () => {
  leases.foreign = await leaseWith(['/tenants/tenant-b/held']);
  leases.own = await leaseWith(['/tenants/tenant-a/held']);
  leases.inbox = await leaseWith(['/inbox/held']);
}, 30_000);

afterAll(() => {
  for (const c of clients.values()) c.close();
});

describe('explain agrees with the proxy', () => {
  it.each(CASES)('$name: $expect', async (testCase) => {
    const args = testCase.args();
    const explained = runExplain(['--cn', testCase.caller, ...args]);
    expect(explained.status, explained.output).toBe(testCase.expect === 'allow' ? 0 : 3);
    expect(explained.output).toMatch(testCase.expect === 'allow' ? /^decision: ALLOW/mu : /^decision: DENY/mu);
    if (testCase.says !== undefined) expect(explained.output).toContain(testCase.says);
    expect(await proxyVerdict(testCase.caller, args)).toBe(testCase.expect);
  });
});
