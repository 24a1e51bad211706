/**
 * The HTTP/2 and hardening attacks of test/attack-*.test.ts, run one after the other
 * against one etcdgate process in front of one etcd, each while a legitimate client makes
 * an ordinary Range every 50 ms on its own connection. Prints, per attack, that client's
 * p50 and p99 latency and failed calls, etcdgate's peak RSS and CPU seconds during the
 * attack, etcd's RSS after it, and one line of what the attack met (GOAWAY, resets,
 * statuses), so the figures in docs/attacks.md can be quoted. The tests assert the
 * outcomes and bounded memory; latency goals (p99 under 250 ms) are only measured here.
 *
 *   node --import ./scripts/ts-loader.mjs bench/attacks.ts [--only NAME[,NAME...]] [--json FILE] [--direct]
 *
 * --direct aims the attack and the legitimate client at etcd itself instead (etcdgate's
 * columns then describe an idle etcdgate): what etcd alone does under the same attack.
 *
 * Not part of `npm test` or `npm run bench`. Attacks come from test/support/h2-attack.py
 * (Debian's python3-hpack and python3-hyperframe under /usr/bin/python3).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import type * as grpc from '@grpc/grpc-js';
import { ATTACK_POLICY, legitimateClient, runAttack, sampleRss, type AttackReport } from '../test/support/attack.js';
import { decode, encode } from '../test/support/etcd-messages.js';
import { startEtcd, type EtcdCluster } from '../test/support/etcd.js';
import { gatewayDir, startGatewayProcess, type GatewayProcess } from '../test/support/gateway-process.js';
import { makePki, type Pki } from '../test/support/pki.js';
import { rawClient, rawUnary } from '../test/support/raw-client.js';

const MIB = 1024 * 1024;


interface Context {
  readonly pki: Pki;
  readonly etcd: EtcdCluster;
  /** A fresh etcdgate per attack, so what one attack leaves behind does not count against the next. */
  gate: GatewayProcess;
  /** An identity's lease, granted through etcdgate. */
  lease(client: string): Promise<string>;
}

interface Attack {
  readonly name: string;
  /** The attacker's client certificate. */
  readonly client: string;
  readonly attack: string;
  readonly params: (context: Context) => Promise<Record<string, unknown>> | Record<string, unknown>;
  /** One line on what the attack met. */
  readonly outcome: (report: AttackReport) => string;
}

const goaway = (report: AttackReport): string => {
  const g = report['goaway'] as { code: string; lastStreamId: number } | null;
  return g === null ? 'no GOAWAY' : `GOAWAY ${g.code} (last stream ${g.lastStreamId})`;
};
const summary = (report: AttackReport, field = 'summary'): string => {
  const s = report[field] as { streams: number; rst: object; grpcStatus: object; httpStatus: object } | undefined;
  return s === undefined ? '' : `${s.streams} streams, RST ${JSON.stringify(s.rst)}, grpc-status ${JSON.stringify(s.grpcStatus)}, :status ${JSON.stringify(s.httpStatus)}`;
};

const ATTACKS: readonly Attack[] = [
  { name: 'rapid-reset', client: 'tenant-a', attack: 'rapid-reset', params: () => ({ streams: 50_000, key: '/tenants/tenant-a/rr' }), outcome: (r) => `${String(r['sent'])} streams sent and reset, ${goaway(r)}` },
  { name: 'continuation-endless', client: 'tenant-a', attack: 'continuation', params: () => ({ size: 16_384 }), outcome: (r) => `${String(r['sent'])} CONTINUATION frames sent, ${goaway(r)}` },
  { name: 'continuation-tiny', client: 'tenant-a', attack: 'continuation', params: () => ({ size: 1 }), outcome: (r) => `${String(r['sent'])} CONTINUATION frames sent, ${goaway(r)}` },
  { name: 'hpack-bomb', client: 'tenant-a', attack: 'hpack-bomb', params: () => ({ streams: 1000 }), outcome: (r) => `bombs: ${summary(r, 'bombs')}; then a Range on the same connection: grpc-status ${String((r['after'] as { grpcStatus?: string } | null)?.grpcStatus)}` },
  { name: 'header-list-too-large', client: 'tenant-a', attack: 'big-headers', params: () => ({ kind: 'list', streams: 200 }), outcome: (r) => `${summary(r, 'requests')}; then grpc-status ${String((r['after'] as { grpcStatus?: string } | null)?.grpcStatus)}` },
  { name: 'header-block-too-large', client: 'tenant-a', attack: 'big-headers', params: () => ({ kind: 'block' }), outcome: goaway },
  ...(['settings', 'ping', 'empty-data', 'window-update', 'window-update-stream', 'priority', 'unknown', 'closed-stream-data'] as const).map(
    (kind): Attack => ({ name: `flood-${kind}`, client: 'tenant-a', attack: 'flood', params: () => ({ kind, frames: 2_000_000 }), outcome: (r) => `${String(r['sent'])} frames written, ${goaway(r)}` }),
  ),
  { name: 'too-many-streams', client: 'tenant-a', attack: 'concurrent-streams', params: () => ({ streams: 3000, expectResets: 1005 }), outcome: (r) => `${summary(r)}, ${goaway(r)}` },
  {
    name: 'zero-window-ranges',
    client: 'tenant-a',
    attack: 'zero-window',
    params: () => ({ kind: 'range', key: '/tenants/tenant-a/big/', streams: 300, holdMs: 10_000 }),
    outcome: (r) => `300 Ranges of 10 MiB never read for ${String(r['heldMs'])} ms: ${String(r['dataBytes'])} DATA bytes reached the client, ${summary(r)}`,
  },
  {
    name: 'zero-window-watches',
    client: 'tenant-a',
    attack: 'zero-window',
    params: () => ({ kind: 'watch', key: '/tenants/tenant-a/events/', connections: 4, streams: 250, holdMs: 10_000 }),
    outcome: (r) => `1000 watch streams never read: ${summary(r)}`,
  },
  { name: 'no-read', client: 'tenant-a', attack: 'no-read', params: () => ({ key: '/tenants/tenant-a/big/', streams: 100, holdMs: 10_000 }), outcome: () => 'socket never read for 10 s' },
  {
    name: 'stalled-requests',
    client: 'tenant-a',
    attack: 'stall',
    params: () => ({ connections: 4, streams: 50, declared: 10 * MIB, send: 9 * MIB, waitMs: 20_000 }),
    outcome: (r) => `${summary(r)}, ended ${JSON.stringify(r['endAfterLastByteMs'])} ms after their last byte`,
  },
  { name: 'gzip-bombs-unbound', client: 'nobody', attack: 'gzip-bombs', params: () => ({ total: 1000, connections: 2 }), outcome: (r) => `${summary(r)}, unanswered ${String(r['unanswered'])}` },
  { name: 'gzip-bombs-bound', client: 'tenant-a', attack: 'gzip-bombs', params: () => ({ total: 1000, connections: 2, key: '/tenants/tenant-a/bomb' }), outcome: (r) => `${summary(r)}, ${JSON.stringify(r['messages'])}` },
  { name: 'close-mid-read', client: 'tenant-a', attack: 'close-mid-read', params: () => ({ streams: 200 }), outcome: (r) => `${String(r['streams'])} streams closed while being read` },
  {
    name: 'keepalive-flood',
    client: 'tenant-a',
    attack: 'keepalive-flood',
    params: async (context) => ({ lease: await context.lease('tenant-a'), streams: 20, perStream: 40_000 }),
    outcome: (r) => `${String(r['sent'])} renewals sent, ${String(r['responses'])} answered, ${summary(r)}`,
  },
  {
    name: 'refusal-flood',
    client: 'tenant-a',
    attack: 'refusal-flood',
    params: () => ({ key: '/tenants/tenant-b/', creates: 200_000, holdMs: 2000 }),
    outcome: (r) => {
      const stream = r['stream'] as { rst: string | null; grpcStatus: string | null; grpcMessage: string | null };
      const status = stream.grpcStatus === null ? '' : `, grpc-status ${stream.grpcStatus} "${stream.grpcMessage ?? ''}"`;
      const end = stream.rst === null && stream.grpcStatus === null ? `${String(r['refusals'])} refusals read in ${String(r['readMs'])} ms` : `the stream ended (RST ${String(stream.rst)}${status}), ${String(r['refusals'])} refusals read`;
      return `${String(r['sent'])} of 200000 refused watch creates taken while not reading; ${end}`;
    },
  },
  { name: 'idle-connection', client: 'tenant-a', attack: 'idle', params: () => ({ waitMs: 10_000 }), outcome: (r) => `${goaway(r)} at ${String((r['goaway'] as { at?: number } | null)?.at)} ms` },
  { name: 'no-preface', client: 'tenant-a', attack: 'idle', params: () => ({ noPreface: true, waitMs: 15_000 }), outcome: (r) => `${goaway(r)}, closed at ${String(r['closedAt'])} ms` },
  { name: 'slow-handshakes', client: 'tenant-a', attack: 'slow-handshake', params: () => ({ connections: 200, intervalMs: 500, waitMs: 15_000 }), outcome: (r) => `${String(r['closed'])} of ${String(r['connections'])} closed after ${JSON.stringify(r['closedAfterMs'])} ms` },
];

function rssOf(pid: number): number {
  const match = /^VmRSS:\s+(\d+) kB$/mu.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(match?.[1] ?? 0) / 1024;
}

/** etcdgate with the defaults, but for timeouts short enough that the idle and stall attacks end within the run. */
async function startGate(pki: Pki, etcd: EtcdCluster): Promise<GatewayProcess> {
  const dir = await gatewayDir();
  return startGatewayProcess({
    pki,
    upstream: etcd.endpoints,
    dir,
    audit: { sink: `file:${dir}/audit.jsonl` },
    policy: ATTACK_POLICY,
    overrides: { limits: { idleTimeoutMs: 3000, handshakeTimeoutMs: 3000, sendStallTimeoutMs: 5000, ...(process.env.TOTAL === undefined ? {} : { totalBufferBytes: Number(process.env.TOTAL) }) }, server: { requestReadTimeoutMs: 3000 } },
  });
}

async function setUp(): Promise<Context> {
  const pki = await makePki();
  const etcd = await startEtcd(pki);
  const gate = await startGate(pki, etcd);
  const root = rawClient(gate.endpoint, pki, 'root');
  // 10 keys of 1 MiB: the 10 MiB range the zero-window readers ask for.
  for (let i = 0; i < 10; i += 1) {
    await rawUnary(root, '/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: Buffer.from(`/tenants/tenant-a/big/${i}`), value: Buffer.alloc(MIB, 0x61) }));
  }
  root.close();
  const context: Context = {
    pki,
    etcd,
    gate,
    lease: async (client) => {
      const grpcClient = rawClient(context.gate.endpoint, pki, client);
      const answer = decode('etcdserverpb.LeaseGrantResponse', await rawUnary(grpcClient, '/etcdserverpb.Lease/LeaseGrant', encode('etcdserverpb.LeaseGrantRequest', { TTL: 600 })));
      grpcClient.close();
      return String(answer['ID']);
    },
  };
  return context;
}

/** Puts a 100 KiB value under the watched prefix every 20 ms while `running()`: events the zero-window watchers never read. */
async function writeEvents(context: Context, running: () => boolean): Promise<number> {
  const client = rawClient(context.gate.endpoint, context.pki, 'root');
  const value = Buffer.alloc(100 * 1024, 0x62);
  let puts = 0;
  while (running()) {
    await rawUnary(client, '/etcdserverpb.KV/Put', encode('etcdserverpb.PutRequest', { key: Buffer.from(`/tenants/tenant-a/events/${puts % 10}`), value })).catch((error: grpc.ServiceError) => {
      throw new Error(`event writer: ${error.message}`);
    });
    puts += 1;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  client.close();
  return puts;
}

interface Row {
  readonly name: string;
  readonly calls: number;
  readonly failed: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly peakRssMiB: number;
  readonly cpuSeconds: number;
  readonly etcdRssMiB: number;
  readonly outcome: string;
}

async function runOne(context: Context, attack: Attack): Promise<Row> {
  const pid = context.gate.child.pid as number;
  const params = await attack.params(context);
  // --direct: the same attack and the same legitimate client against etcd itself (for comparison).
  const endpoint = direct ? (context.etcd.endpoints[0] ?? '') : context.gate.endpoint;
  const legit = await legitimateClient(endpoint, context.pki, 'root');
  const rss = sampleRss(pid, 50);
  const cpuBefore = rss.cpuSeconds();
  let writing = attack.name === 'zero-window-watches';
  const writer = writing ? writeEvents(context, () => writing) : Promise.resolve(0);
  let report: AttackReport;
  try {
    report = await runAttack(endpoint, context.pki, attack.client, attack.attack, params, 300_000);
  } finally {
    writing = false;
    await writer;
  }
  // A second after the attack: what it left behind still counts.
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const result = await legit.stop();
  const cpu = rss.cpuSeconds() - cpuBefore;
  rss.stop();
  const etcdPid = context.etcd.members[0]?.pid;
  return {
    name: attack.name,
    calls: result.calls.length,
    failed: result.failures.length,
    p50Ms: result.p50Ms,
    p99Ms: result.p99Ms,
    peakRssMiB: rss.peakMiB(),
    cpuSeconds: cpu,
    etcdRssMiB: etcdPid === undefined ? Number.NaN : rssOf(etcdPid),
    outcome: attack.outcome(report),
  };
}

/** Set by --direct. */
let direct = false;

const fixed = (value: number, digits = 1): string => (Number.isFinite(value) ? value.toFixed(digits) : '-');

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { only: { type: 'string' }, json: { type: 'string' }, direct: { type: 'boolean' } } });
  direct = values.direct === true;
  const only = values.only === undefined ? undefined : new Set(values.only.split(','));
  const chosen = ATTACKS.filter((attack) => only === undefined || only.has(attack.name));
  if (chosen.length === 0) throw new Error(`no attack named ${values.only ?? ''}; known: ${ATTACKS.map((a) => a.name).join(', ')}`);
  const context = await setUp();
  const rows: Row[] = [];
  try {
    const idle = await legitimateClient(context.gate.endpoint, context.pki, 'root');
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const baseline = await idle.stop();
    console.log(`baseline (no attack): ${baseline.calls.length} calls, p50 ${fixed(baseline.p50Ms)} ms, p99 ${fixed(baseline.p99Ms)} ms, etcdgate RSS ${fixed(rssOf(context.gate.child.pid as number))} MiB`);
    console.log('| attack | legit calls | failed | p50 ms | p99 ms | etcdgate peak RSS MiB | etcdgate CPU s | etcd RSS MiB after | what the attack met |');
    console.log('|---|---|---|---|---|---|---|---|---|');
    for (const attack of chosen) {
      await context.gate.stop();
      context.gate = await startGate(context.pki, context.etcd);
      const row = await runOne(context, attack);
      rows.push(row);
      console.log(`| ${row.name} | ${row.calls} | ${row.failed} | ${fixed(row.p50Ms)} | ${fixed(row.p99Ms)} | ${fixed(row.peakRssMiB)} | ${fixed(row.cpuSeconds, 2)} | ${fixed(row.etcdRssMiB, 0)} | ${row.outcome} |`);
    }
  } finally {
    await context.gate.stop();
    await context.etcd.stop();
    await context.pki.remove();
  }
  if (values.json !== undefined) writeFileSync(values.json, JSON.stringify(rows, null, 2));
}

await main();
