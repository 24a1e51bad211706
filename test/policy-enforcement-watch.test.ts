/**
 * Watch policy enforcement against a real etcd 3.4: a create request whose range is not
 * wholly readable is refused in-band the way etcd refuses it (created, canceled,
 * watch_id -1, "etcdserver: permission denied") while the same stream keeps serving the
 * caller's other watchers, responses keep the order of the create requests, and a policy
 * reload cancels watchers whose range is no longer readable (a broken reload keeps the
 * old policy).
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { decode, encode } from './support/etcd-messages.js';
import { b, DENIED_TEXT, expectDenied } from './support/enforcement.js';
import { devPolicy, devPolicyWith, usePolicyFile, type PolicyDocument } from './support/policy-file.js';
import { callEtcd, rawClient, rawWatch } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

type WatchResponse = Record<string, unknown>;

/** The dev policy, with or without a read grant on /shared/ for tenant-a. */
function policy(shared: boolean): PolicyDocument {
  return shared ? devPolicyWith('shared-reader', [{ prefix: '/shared/', access: 'read' }], 'tenant-a') : devPolicy();
}

const policyFile = usePolicyFile('etcdgate-watch-policy-', () => stringify(policy(true)));
const stack = useGatewayStack({ policy: () => policyFile.path });
let tenantA: grpc.Client;
let root: grpc.Client;

beforeAll(() => {
  tenantA = rawClient(stack.gate.endpoint, stack.pki, 'tenant-a');
  root = rawClient(stack.gate.endpoint, stack.pki, 'root');
});

afterAll(() => {
  tenantA?.close();
  root?.close();
});

/** Every response of one watch stream, in arrival order, with a way to wait for a condition. */
class WatchLog {
  readonly responses: WatchResponse[] = [];
  private waiters: Array<() => void> = [];

  constructor(readonly stream: grpc.ClientDuplexStream<Buffer, Buffer>) {
    stream.on('data', (chunk: Buffer) => {
      this.responses.push(decode('etcdserverpb.WatchResponse', chunk));
      for (const wake of this.waiters) wake();
    });
  }

  create(request: Record<string, unknown>): void {
    this.stream.write(encode('etcdserverpb.WatchRequest', { create_request: request }));
  }

  /** Resolves with the responses once `predicate` holds for them; fails after 10 s. */
  waitFor(what: string, predicate: (responses: WatchResponse[]) => boolean): Promise<WatchResponse[]> {
    return new Promise((resolve, reject) => {
      const check = (): boolean => {
        if (!predicate(this.responses)) return false;
        this.waiters = this.waiters.filter((w) => w !== wake);
        clearTimeout(timer);
        resolve(this.responses);
        return true;
      };
      const wake = (): void => void check();
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== wake);
        reject(new Error(`watch: ${what} did not happen; got ${JSON.stringify(this.responses)}`));
      }, 10_000);
      if (!check()) this.waiters.push(wake);
    });
  }

  created(): WatchResponse[] {
    return this.responses.filter((r) => r['created'] === true);
  }

  /** Keys of the events delivered to watcher `id`. */
  eventKeys(id: string): string[] {
    return this.responses
      .filter((r) => idOf(r) === id && Array.isArray(r['events']))
      .flatMap((r) => (r['events'] as Array<{ kv: { key: Buffer } }>).map((e) => e.kv.key.toString()));
  }
}

function idOf(response: WatchResponse): string {
  return String(response['watch_id'] ?? '0');
}

function prefix(p: string): Record<string, unknown> {
  const end = Buffer.from(p);
  end[end.length - 1] = end[end.length - 1]! + 1;
  return { key: b(p), range_end: end };
}

const PARTLY_OUTSIDE = { key: b('/tenants/tenant-a/'), range_end: b('/tenants/tenant-b0') };

function expectRefusal(response: WatchResponse | undefined): void {
  expect(response).toMatchObject({ created: true, canceled: true, watch_id: '-1', cancel_reason: DENIED_TEXT });
}

async function put(key: string): Promise<void> {
  await callEtcd(root, 'KV', 'Put', ['PutRequest', { key: b(key), value: b('v') }], 'PutResponse');
}

describe('watch enforcement', () => {
  it('refuses a partly-covered watch in-band and keeps serving watchers created before and after it', async () => {
    const log = new WatchLog(rawWatch(tenantA));
    try {
      log.create(prefix('/tenants/tenant-a/before/'));
      const [before] = await log.waitFor('first create', (rs) => rs.length === 1);
      expect(before).toMatchObject({ created: true });
      expect(before?.['canceled']).toBeUndefined();

      log.create(PARTLY_OUTSIDE);
      await log.waitFor('refusal', (rs) => rs.length === 2);
      expectRefusal(log.responses[1]);
      // etcd's own watch on the whole range would see this key; the refused watcher must not.
      await put('/tenants/tenant-b/w/outside');

      log.create(prefix('/tenants/tenant-a/after/'));
      const [, , after] = await log.waitFor('third create', (rs) => rs.length === 3);
      expect(after).toMatchObject({ created: true });
      expect(after?.['canceled']).toBeUndefined();

      await put('/tenants/tenant-a/before/k');
      await put('/tenants/tenant-a/after/k');
      await log.waitFor('events for both watchers', () => log.eventKeys(idOf(before!)).length === 1 && log.eventKeys(idOf(after!)).length === 1);
      expect(log.eventKeys(idOf(before!))).toEqual(['/tenants/tenant-a/before/k']);
      expect(log.eventKeys(idOf(after!))).toEqual(['/tenants/tenant-a/after/k']);
      expect(log.responses.some((r) => JSON.stringify(r).includes(Buffer.from('/tenants/tenant-b/').toString('base64')))).toBe(false);
    } finally {
      log.stream.cancel();
    }
  });

  it('answers creates sent back to back in request order: allowed, refused, allowed', async () => {
    const log = new WatchLog(rawWatch(tenantA));
    try {
      log.create(prefix('/tenants/tenant-a/order-a/'));
      log.create(PARTLY_OUTSIDE);
      log.create(prefix('/tenants/tenant-a/order-c/'));
      const created = (await log.waitFor('three creates', () => log.created().length === 3)).filter((r) => r['created'] === true);
      const [a, refused, c] = created;
      expect(a?.['canceled']).toBeUndefined();
      expectRefusal(refused);
      expect(c?.['canceled']).toBeUndefined();
      expect(idOf(a!)).not.toBe(idOf(c!));

      // Each id is the watcher the client thinks it is: A's events carry A's id.
      await put('/tenants/tenant-a/order-c/k');
      await put('/tenants/tenant-a/order-a/k');
      await log.waitFor('events', () => log.eventKeys(idOf(a!)).length === 1 && log.eventKeys(idOf(c!)).length === 1);
      expect(log.eventKeys(idOf(a!))).toEqual(['/tenants/tenant-a/order-a/k']);
      expect(log.eventKeys(idOf(c!))).toEqual(['/tenants/tenant-a/order-c/k']);
    } finally {
      log.stream.cancel();
    }
  });

  it('refuses a from-key watch (range end "\\0") starting inside a grant, as etcd 3.5.33/3.6.14 do (GHSA-xg4h-6gfc-h4m8)', async () => {
    const log = new WatchLog(rawWatch(tenantA));
    try {
      // tenant-a may read /shared/...: a watch from /shared/a to the end of the key space
      // would show it every later key. etcd before the fix checked it as a single key.
      log.create({ key: b('/shared/a'), range_end: b('\0') });
      log.create({ key: b('/shared/a') });
      await log.waitFor('refusal, then the single-key watcher', (rs) => rs.filter((r) => r['created'] === true).length === 2);
      expectRefusal(log.responses[0]);
      expect(log.responses[1]).toMatchObject({ created: true });
      expect(log.responses[1]?.['canceled']).not.toBe(true);
      const id = idOf(log.responses[1] ?? {});
      await put('/zz-after-shared');
      await put('/shared/a');
      await log.waitFor('event on /shared/a', () => log.eventKeys(id).includes('/shared/a'));
      expect(log.eventKeys(id)).toEqual(['/shared/a']);
    } finally {
      log.stream.cancel();
    }
  });

  it('refuses a watch on every key (empty key, range end "\\0") to a tenant', async () => {
    const log = new WatchLog(rawWatch(tenantA));
    try {
      log.create({ range_end: b('\0') });
      await log.waitFor('refusal', (rs) => rs.length === 1);
      expectRefusal(log.responses[0]);
    } finally {
      log.stream.cancel();
    }
  });

  it('keeps the old policy when the reloaded file is invalid', async () => {
    await put('/shared/doc');
    const range = (): Promise<Record<string, unknown>> => callEtcd(tenantA, 'KV', 'Range', ['RangeRequest', { key: b('/shared/doc') }], 'RangeResponse');
    expect((await range())['count']).toBe('1');
    await policyFile.write('roles: { broken: { keys: [ { prefix: 7, access: sometimes } ] } }\nbindings: nope\n');
    try {
      expect(stack.gate.gateway.reloadPolicy()).toBe(false);
      // Only the policy in force before the failed reload grants /shared/.
      expect((await range())['count']).toBe('1');
      await expectDenied(callEtcd(tenantA, 'KV', 'Range', ['RangeRequest', { key: b('/tenants/tenant-b/x') }], 'RangeResponse'));
    } finally {
      await policyFile.write(stringify(policy(true)));
    }
    expect(stack.gate.gateway.reloadPolicy()).toBe(true);
  });

  it('cancels, in-band, a watcher whose range a policy reload makes unreadable, and keeps the others', async () => {
    const log = new WatchLog(rawWatch(tenantA));
    try {
      log.create(prefix('/shared/'));
      log.create(prefix('/tenants/tenant-a/kept/'));
      await log.waitFor('two creates', () => log.created().length === 2);
      const [shared, kept] = log.created();
      expect(shared?.['canceled']).toBeUndefined();
      const sharedId = idOf(shared!);

      await policyFile.write(stringify(policy(false)));
      expect(stack.gate.gateway.reloadPolicy()).toBe(true);
      const cancel = (rs: WatchResponse[]): WatchResponse | undefined => rs.find((r) => r['canceled'] === true && r['created'] !== true);
      await log.waitFor('cancel of the /shared/ watcher', (rs) => cancel(rs) !== undefined);
      const canceled = cancel(log.responses);
      expect(canceled).toMatchObject({ canceled: true, cancel_reason: DENIED_TEXT });
      expect(idOf(canceled!)).toBe(sharedId);

      await put('/shared/after-reload');
      await put('/tenants/tenant-a/kept/k');
      await log.waitFor('event for the kept watcher', () => log.eventKeys(idOf(kept!)).length === 1);
      expect(log.eventKeys(sharedId)).toEqual([]);
      // etcd's confirmation of etcdgate's own cancel is not relayed: exactly one cancel reached the client.
      expect(log.responses.filter((r) => r['canceled'] === true && idOf(r) === sharedId)).toHaveLength(1);

      log.create(prefix('/shared/'));
      await log.waitFor('refusal after reload', () => log.created().length === 3);
      expectRefusal(log.created()[2]);
    } finally {
      log.stream.cancel();
    }
  });
});
