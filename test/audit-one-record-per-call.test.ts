/**
 * Under sustained concurrent load, every unary call leaves exactly one audit record:
 * 20,000 calls (Put, Range, DeleteRange, Txn; a share of them refused by the policy)
 * with 48 in flight at a time, each on its own key. After a flush the number of call
 * records equals the number of calls, each key is in exactly one record with the right
 * action and outcome, and no event.id repeats.
 */
import type * as grpc from '@grpc/grpc-js';
import { expect, it } from 'vitest';
import { useGatewayStack } from './support/stack.js';
import { callEtcd, rawClient } from './support/raw-client.js';

const CALLS = 20_000;
const IN_FLIGHT = 48;
/** Connections the load is spread over (grpc-js multiplexes the in-flight calls on them). */
const CLIENTS = 4;

const POLICY = {
  roles: { loader: { keys: [{ prefix: '/load/allowed/', access: 'readwrite' }] } },
  bindings: [{ match: { cn: 'tenant-a' }, roles: ['loader'] }],
};

const stack = useGatewayStack({ policy: POLICY });

type Op = 'put' | 'range' | 'delete_range' | 'txn';
const OPS: readonly Op[] = ['put', 'range', 'delete_range', 'txn'];
const ACTIONS: Readonly<Record<Op, string>> = {
  put: 'etcd.kv.put',
  range: 'etcd.kv.range',
  delete_range: 'etcd.kv.delete_range',
  txn: 'etcd.kv.txn',
};

interface Planned {
  readonly key: string;
  readonly op: Op;
  /** Refused by the policy (the key is outside /load/allowed/). */
  readonly denied: boolean;
}

/** Call i: the op cycles, every fifth call targets a key the policy does not grant. */
function plan(i: number): Planned {
  const denied = i % 5 === 4;
  return { key: `/load/${denied ? 'denied' : 'allowed'}/${String(i).padStart(6, '0')}`, op: OPS[i % OPS.length] ?? 'put', denied };
}

function send(client: grpc.Client, call: Planned): Promise<Record<string, unknown>> {
  const key = Buffer.from(call.key);
  switch (call.op) {
    case 'put':
      return callEtcd(client, 'KV', 'Put', ['PutRequest', { key, value: Buffer.from('v') }], 'PutResponse');
    case 'range':
      return callEtcd(client, 'KV', 'Range', ['RangeRequest', { key }], 'RangeResponse');
    case 'delete_range':
      return callEtcd(client, 'KV', 'DeleteRange', ['DeleteRangeRequest', { key }], 'DeleteRangeResponse');
    case 'txn':
      return callEtcd(
        client,
        'KV',
        'Txn',
        ['TxnRequest', { compare: [{ key, target: 'VERSION', result: 'EQUAL', version: 0 }], success: [{ request_put: { key, value: Buffer.from('v') } }] }],
        'TxnResponse',
      );
  }
}

interface AuditRecord {
  event: { id: string; action: string; outcome: string };
  etcd: { request: { key?: string; compare?: Array<{ key?: string }> } };
  etcdgate: { event_kind: string };
}

/** The key a call record is about: the request key, or a Txn's first compare key. */
function keyOf(record: AuditRecord): string | undefined {
  return record.etcd.request.key ?? record.etcd.request.compare?.[0]?.key;
}

it(`writes exactly one record per call for ${String(CALLS)} concurrent unary calls`, async () => {
  const clients = Array.from({ length: CLIENTS }, () => rawClient(stack.gate.endpoint, stack.pki, 'tenant-a'));
  const outcomes = new Map<string, 'success' | 'failure'>();
  let next = 0;
  const worker = async (w: number): Promise<void> => {
    const client = clients[w % CLIENTS];
    if (client === undefined) throw new Error('no client');
    for (let i = next++; i < CALLS; i = next++) {
      const call = plan(i);
      const ok = await send(client, call).then(
        () => true,
        (error: { code?: number }) => {
          // Only policy refusals are expected; anything else is a broken test set-up.
          expect(error.code).toBe(7);
          return false;
        },
      );
      outcomes.set(call.key, ok ? 'success' : 'failure');
    }
  };
  try {
    await Promise.all(Array.from({ length: IN_FLIGHT }, (_, w) => worker(w)));
  } finally {
    for (const client of clients) client.close();
  }
  expect(outcomes.size).toBe(CALLS);

  const records = ((await stack.gate.auditRecords()) as unknown as AuditRecord[]).filter((r) => r.etcdgate.event_kind === 'call');
  expect(records).toHaveLength(CALLS);
  expect(new Set(records.map((r) => r.event.id)).size).toBe(CALLS);

  const byKey = new Map<string, AuditRecord[]>();
  for (const record of records) {
    const key = keyOf(record);
    if (key === undefined) continue;
    const list = byKey.get(key) ?? [];
    list.push(record);
    byKey.set(key, list);
  }
  const problems: string[] = [];
  for (let i = 0; i < CALLS; i += 1) {
    const call = plan(i);
    const found = byKey.get(call.key) ?? [];
    if (found.length !== 1) {
      problems.push(`${call.key}: ${String(found.length)} records`);
      continue;
    }
    const record = found[0];
    const outcome = call.denied ? 'failure' : 'success';
    if (record?.event.action !== ACTIONS[call.op] || record.event.outcome !== outcome || outcomes.get(call.key) !== outcome) {
      problems.push(`${call.key}: ${record?.event.action ?? '?'} ${record?.event.outcome ?? '?'}, client saw ${outcomes.get(call.key) ?? '?'}`);
    }
  }
  expect(problems.slice(0, 10)).toEqual([]);
});
