/**
 * Network isolation on the listener, with clients bound to other loopback addresses
 * (127.0.0.2 inside the rules, 127.0.0.3 outside) and a real etcd behind etcdgate:
 *  - `server.allowedSources` refuses a connection from outside before TLS (audited with
 *    the source, counted as `source_not_allowed`) and serves one from inside;
 *  - a binding's `match.source` honours tenant-a's certificate only from 127.0.0.2;
 *  - a TCP connection that never speaks TLS (nothing sent, or plain HTTP) is refused as
 *    `no_tls`, and one that closes halfway through its handshake still has its source
 *    address and port in the record (taken when the connection was accepted);
 *  - refusal records are rate-limited per source: 10,000 probes neither fill the audit
 *    buffer nor, with `onFailure: deny`, shut out a legitimate client; without the limit
 *    a few hundred probes do (the attack); suppressed records are summarized per source.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestGateway } from './support/gateway.js';
import { freePort } from './support/ports.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { callFrom, tcpProbe } from './support/source-client.js';
import { useGatewayStack } from './support/stack.js';
import { probeTls } from './support/tls-probe.js';

const stack = useGatewayStack({ gateway: false });
let gate: TestGateway;
/** Refusals 127.0.0.3 has caused at `gate` so far (each must be a record or in a summary). */
let refusalsFromOutside = 0;

const POLICY = {
  roles: { writer: { keys: [{ prefix: '/src/', access: 'readwrite' }] } },
  bindings: [
    { match: { cn: 'tenant-a', source: ['127.0.0.2/32'] }, roles: ['writer'] },
    { match: { cn: 'tenant-b' }, roles: ['writer'] },
  ],
};

const portOf = (target: TestGateway): number => Number(new URL(target.endpoint).port);

const putFrom = (target: TestGateway, name: string, from: string, key: string): ReturnType<typeof callFrom> =>
  callFrom(portOf(target), stack.pki, name, from, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse');

async function metric(target: TestGateway, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${target.adminUrl}/metrics`)).text();
  const value = sampleValue(parseExposition(text), name, labels);
  return Number.isNaN(value) ? 0 : value;
}

interface AuditRecord {
  event: { reason?: string; outcome: string };
  source?: { ip?: string; port?: number };
  user?: { name?: string };
  etcd?: { decision?: { reason?: string } };
  etcdgate: { event_kind: string; suppressed_records?: number };
}

async function records(target: TestGateway): Promise<AuditRecord[]> {
  return (await target.auditRecords()) as unknown as AuditRecord[];
}

async function refusalAt(target: TestGateway, port: number): Promise<AuditRecord | undefined> {
  let found: AuditRecord | undefined;
  await expect
    .poll(async () => {
      found = (await records(target)).find((r) => r.etcdgate.event_kind === 'handshake.refused' && r.source?.port === port);
      return found;
    })
    .toBeDefined();
  return found;
}

/** `count` probes from `from` that connect and hang up at once, `parallel` at a time. */
async function probes(port: number, from: string, count: number, parallel = 50): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next += 1;
      await tcpProbe(port, from, Buffer.alloc(0), { hangUp: true });
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
}

beforeAll(async () => {
  gate = await stack.startGateway({ policy: POLICY, overrides: { server: { allowedSources: ['127.0.0.1/32', '127.0.0.2/32'] } } });
}, 60_000);

afterAll(async () => {
  await gate?.stop();
});

describe('server.allowedSources', () => {
  it('serves a client from inside and refuses one from outside before TLS, audited and counted', async () => {
    expect(await putFrom(gate, 'tenant-b', '127.0.0.2', '/src/b/inside')).toMatchObject({ grpcStatus: 0 });
    const before = await metric(gate, 'etcdgate_tls_handshake_failures_total', { reason: 'source_not_allowed' });
    const outside = await putFrom(gate, 'tenant-b', '127.0.0.3', '/src/b/outside');
    refusalsFromOutside += 1;
    expect(outside.grpcStatus).toBeUndefined();
    expect(outside.connectionError).toBeDefined();
    expect(await refusalAt(gate, outside.localPort)).toMatchObject({ event: { reason: 'source_not_allowed', outcome: 'failure' }, source: { ip: '127.0.0.3' } });
    expect(await metric(gate, 'etcdgate_tls_handshake_failures_total', { reason: 'source_not_allowed' })).toBe(before + 1);
  });
});

describe('match.source in a binding', () => {
  it("honours tenant-a's certificate from 127.0.0.2 only; tenant-b (no source rule) from both", async () => {
    expect(await putFrom(gate, 'tenant-a', '127.0.0.2', '/src/a/from-2')).toMatchObject({ grpcStatus: 0 });
    const refused = await putFrom(gate, 'tenant-a', '127.0.0.1', '/src/a/from-1');
    expect(refused).toMatchObject({ grpcStatus: 7, grpcMessage: 'etcdserver: permission denied' });
    expect(await putFrom(gate, 'tenant-b', '127.0.0.1', '/src/b/from-1')).toMatchObject({ grpcStatus: 0 });
    const calls = (await records(gate)).filter((r) => r.etcdgate.event_kind === 'call' && r.user?.name === 'tenant-a');
    expect(calls.find((r) => r.source?.port === refused.localPort)).toMatchObject({ source: { ip: '127.0.0.1' }, etcd: { decision: { reason: 'no binding' } } });
  });
});

describe('connections that never speak TLS', () => {
  it('one that sends nothing and hangs up is refused as no_tls, with its source', async () => {
    const before = await metric(gate, 'etcdgate_tls_handshake_failures_total', { reason: 'no_tls' });
    const probe = await tcpProbe(portOf(gate), '127.0.0.2', Buffer.alloc(0), { hangUp: true });
    expect(await refusalAt(gate, probe.localPort)).toMatchObject({ event: { reason: 'no_tls' }, source: { ip: '127.0.0.2', port: probe.localPort } });
    await expect.poll(() => metric(gate, 'etcdgate_tls_handshake_failures_total', { reason: 'no_tls' })).toBe(before + 1);
  });

  it('one that sends plain HTTP is closed by etcdgate and refused as no_tls', async () => {
    const probe = await tcpProbe(portOf(gate), '127.0.0.2', Buffer.from('GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n'));
    expect(probe.closedByServer).toBe(true);
    expect(await refusalAt(gate, probe.localPort)).toMatchObject({ event: { reason: 'no_tls' }, source: { ip: '127.0.0.2' } });
  });

  it('one that closes in the middle of its TLS handshake still has its source address and port', async () => {
    // The first bytes of a TLS record carrying a ClientHello, then the client is gone.
    const probe = await tcpProbe(portOf(gate), '127.0.0.2', Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc, 0x03, 0x03]), { hangUp: true });
    const record = await refusalAt(gate, probe.localPort);
    expect(record?.source).toEqual({ ip: '127.0.0.2', port: probe.localPort });
  });

  it('a verified client from inside is still served', async () => {
    expect((await probeTls(portOf(gate), stack.pki, stack.pki.client('tenant-b'), { localAddress: '127.0.0.2' })).served).toBe(true);
  });
});

describe('refusal records are rate-limited per source', () => {
  it('300 refusals from one source: a burst of records, the rest in a summary, every refusal accounted for', async () => {
    const suppressedBefore = await metric(gate, 'etcdgate_audit_refusal_records_suppressed_total');
    const started = Date.now();
    await probes(portOf(gate), '127.0.0.3', 300);
    // At most the burst (20) plus what refills at 60 a minute while the probes run.
    const mostWritten = 20 + Math.ceil((Date.now() - started) / 1000) + 1;
    refusalsFromOutside += 300;
    await expect.poll(() => metric(gate, 'etcdgate_audit_refusal_records_suppressed_total')).toBeGreaterThan(suppressedBefore);
    // Summaries are written every 10 s.
    await expect
      .poll(
        async () => {
          const all = await records(gate);
          const written = all.filter((r) => r.etcdgate.event_kind === 'handshake.refused' && r.source?.ip === '127.0.0.3').length;
          const summarized = all
            .filter((r) => r.etcdgate.event_kind === 'refusals.suppressed' && r.source?.ip === '127.0.0.3')
            .reduce((sum, r) => sum + (r.etcdgate.suppressed_records ?? 0), 0);
          return { written: written <= mostWritten, total: written + summarized };
        },
        { timeout: 20_000, interval: 500 },
      )
      .toEqual({ written: true, total: refusalsFromOutside });
  }, 60_000);

  function gatewayWithDeadSink(sinkPort: number, limits: Record<string, number>): Promise<TestGateway> {
    return stack.startGateway({
      policy: POLICY,
      overrides: {
        audit: { sink: `syslog+tls://127.0.0.1:${String(sinkPort)}`, syslog: { ca: stack.pki.ca }, bufferRecords: 100, onFailure: 'deny' },
        limits,
      },
    });
  }

  it('the attack: without the limit, 300 probes fill the audit buffer and refuse a legitimate call', async () => {
    const open = await gatewayWithDeadSink(await freePort(), { refusalRecordsPerMinute: 0 });
    try {
      await probes(portOf(open), '127.0.0.3', 300);
      await expect.poll(async () => (await fetch(`${open.adminUrl}/readyz`)).status).toBe(503);
      expect(await putFrom(open, 'tenant-b', '127.0.0.2', '/src/b/shut-out')).toMatchObject({ grpcStatus: 14, grpcMessage: 'etcdgate: audit sink unavailable' });
    } finally {
      await open.stop();
    }
  }, 60_000);

  it('with the default limit, 10,000 probes leave the buffer with room and the legitimate call is served', async () => {
    const limited = await gatewayWithDeadSink(await freePort(), {});
    try {
      await probes(portOf(limited), '127.0.0.3', 10_000);
      await expect.poll(() => metric(limited, 'etcdgate_tls_handshake_failures_total', { reason: 'no_tls' }), { timeout: 10_000 }).toBe(10_000);
      // At most the burst (20) and a minute's refill (60) were written.
      expect(await metric(limited, 'etcdgate_audit_refusal_records_suppressed_total')).toBeGreaterThanOrEqual(10_000 - 80);
      expect(await metric(limited, 'etcdgate_audit_queue_depth')).toBeLessThan(100);
      expect((await fetch(`${limited.adminUrl}/readyz`)).status).toBe(200);
      expect(await putFrom(limited, 'tenant-b', '127.0.0.2', '/src/b/served')).toMatchObject({ grpcStatus: 0 });
    } finally {
      await limited.stop();
    }
  }, 120_000);
});
