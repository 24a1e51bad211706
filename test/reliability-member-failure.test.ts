/**
 * One etcd member of three stops under a steady write load through etcdgate: no
 * acknowledged write is lost, failures stop within a few seconds, and a watch opened
 * through etcdgate before the fault (with `hasleader`, re-created from the next revision
 * when its stream ends, as clientv3 does) sees exactly the events etcd itself delivers.
 * The stopped member is etcdgate's first (preferred) endpoint, so every stream and call
 * in flight is on it when it goes away.
 */
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import { headerRevision, keysUnder, startPutLoad, startResumingWatch, unary, waitForQuiet } from './support/load.js';
import type { TestGateway } from './support/gateway.js';
import { useGatewayStack } from './support/stack.js';
import { parseExposition } from './support/prometheus-text.js';
import { rawClient } from './support/raw-client.js';

const stack = useGatewayStack({ clusterSize: 3, gateway: false });

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Index of the member that is leader, asking each member's Maintenance.Status directly. */
async function leaderIndex(): Promise<number> {
  for (let round = 0; round < 50; round++) {
    for (const [index, member] of stack.etcd.members.entries()) {
      const client = rawClient(member.clientUrl, stack.pki, 'root');
      try {
        const status = await unary(client, 'Maintenance', 'Status', ['StatusRequest', {}], 'StatusResponse', { deadlineMs: 3_000 });
        const header = status['header'] as { member_id?: string } | undefined;
        if (header?.member_id !== undefined && header.member_id === status['leader']) return index;
      } catch {
        // A member that cannot answer right now is not the leader we want to stop.
      } finally {
        client.close();
      }
    }
    await sleep(200);
  }
  throw new Error('no etcd member reports itself as leader');
}

/** Waits until etcdgate reports every upstream endpoint up, so its first endpoint is the one in use. */
async function waitAllUpstreamsUp(gate: TestGateway, count: number): Promise<void> {
  const limit = Date.now() + 30_000;
  for (;;) {
    const text = await (await fetch(`${gate.adminUrl}/metrics`)).text();
    const up = parseExposition(text).samples.filter((s) => s.name === 'etcdgate_upstream_up' && s.value === 1);
    if (up.length === count) return;
    if (Date.now() > limit) throw new Error(`etcdgate_upstream_up: only ${up.length} of ${count} endpoints up`);
    await sleep(200);
  }
}

async function survivorRevision(survivor: grpc.Client): Promise<number> {
  return headerRevision(await unary(survivor, 'KV', 'Range', ['RangeRequest', { key: Buffer.from('/none') }], 'RangeResponse'));
}

async function stopMemberUnderLoad(role: 'leader' | 'follower'): Promise<void> {
  const leader = await leaderIndex();
  const victim = role === 'leader' ? leader : (leader + 1) % stack.etcd.members.length;
  const survivorIndex = [0, 1, 2].find((i) => i !== victim) ?? 0;
  const member = stack.etcd.members[victim];
  const survivorMember = stack.etcd.members[survivorIndex];
  if (member === undefined || survivorMember === undefined) throw new Error('cluster has fewer than 3 members');
  const upstream = [member.clientUrl, ...stack.etcd.members.filter((_, i) => i !== victim).map((m) => m.clientUrl)];
  const gate = await stack.startGateway({ upstream });
  const client = rawClient(gate.endpoint, stack.pki, 'root');
  const survivor = rawClient(survivorMember.clientUrl, stack.pki, 'root');
  const prefix = `/reliability/${role}/`;
  try {
    await waitAllUpstreamsUp(gate, 3);
    const startRevision = (await survivorRevision(survivor)) + 1;
    const watch = startResumingWatch([client], { prefix, startRevision });
    const load = startPutLoad([client], { prefix, workers: 4 });
    try {
      await sleep(2_000);
      const ackedBefore = load.acked.size;
      await member.stop();
      // Failures stop: a 3 s stretch with acknowledged Puts and no failed attempt, within 30 s.
      expect(await waitForQuiet(load, 3_000, 30_000), `errors: ${JSON.stringify(load.errorsByCode())}`).toBe(true);
      await load.stop();
      expect(ackedBefore).toBeGreaterThan(0);
      expect(load.acked.size).toBeGreaterThan(ackedBefore);
    } finally {
      await load.stop();
    }

    // Every acknowledged Put is in etcd, read from a member that stayed up.
    const keys = await keysUnder(survivor, prefix);
    const lost = [...load.acked.keys()].filter((key) => !keys.has(key));
    expect(lost).toEqual([]);

    // The watch through etcdgate saw what etcd delivers to a direct watcher: every event once, in order.
    const finalRevision = await survivorRevision(survivor);
    const direct = startResumingWatch([survivor], { prefix, startRevision });
    try {
      expect(await watch.waitFor(finalRevision, 30_000)).toBe(true);
      expect(await direct.waitFor(finalRevision, 30_000)).toBe(true);
      const upTo = (events: typeof watch.events): string[] =>
        events.filter((e) => e.modRevision <= finalRevision).map((e) => `${e.modRevision} ${e.type} ${e.key}`);
      expect(upTo(watch.events)).toEqual(upTo(direct.events));
      const revisions = watch.events.map((e) => e.modRevision);
      expect(revisions.every((rev, i) => i === 0 || rev > (revisions[i - 1] ?? 0))).toBe(true);
      // The stream bound to the stopped member ended and was re-created.
      expect(watch.restarts).toBeGreaterThanOrEqual(1);
      expect(watch.events.filter((e) => load.acked.has(e.key)).length).toBeGreaterThanOrEqual(load.acked.size);
    } finally {
      watch.close();
      direct.close();
    }
  } finally {
    client.close();
    survivor.close();
    await gate.stop();
    await member.start();
  }
}

describe('an etcd member stops under load', () => {
  it('stopping the leader loses no acknowledged write, errors stop, and the watch resumes exactly', async () => {
    await stopMemberUnderLoad('leader');
  }, 120_000);

  it('stopping a follower loses no acknowledged write, errors stop, and the watch resumes exactly', async () => {
    await stopMemberUnderLoad('follower');
  }, 120_000);
});
