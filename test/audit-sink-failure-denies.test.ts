/**
 * With `audit.onFailure: deny`, etcdgate refuses calls it cannot audit. The sink is
 * syslog over TLS to a port where nothing listens, with a 50-record buffer: once the
 * buffer is full, calls get UNAVAILABLE "etcdgate: audit sink unavailable", /readyz
 * turns 503 and etcdgate_audit_sink_failures_total rises. When a syslog server appears
 * on that port, the buffered records are delivered and calls succeed again. With
 * `onFailure: allow` the same dead sink never stops a call.
 */
import type * as grpc from '@grpc/grpc-js';
import { describe, expect, it } from 'vitest';
import type { TestGateway } from './support/gateway.js';
import { useGatewayStack } from './support/stack.js';
import { startSyslogReceiver, type SyslogReceiver } from './support/syslog-receiver.js';
import { freePort } from './support/ports.js';
import { parseExposition, sampleValue } from './support/prometheus-text.js';
import { callEtcd, rawClient } from './support/raw-client.js';

const BUFFER = 50;

const stack = useGatewayStack({ gateway: false });

function gatewayWithDeadSink(port: number, onFailure: 'deny' | 'allow'): Promise<TestGateway> {
  return stack.startGateway({
    overrides: { audit: { sink: `syslog+tls://127.0.0.1:${String(port)}`, syslog: { ca: stack.pki.ca }, bufferRecords: BUFFER, onFailure } },
  });
}

const put = (client: grpc.Client, key: string): Promise<Record<string, unknown>> =>
  callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse');

/** The error a call failed with, or undefined when it succeeded. */
const outcome = (call: Promise<unknown>): Promise<{ code?: number; details?: string } | undefined> =>
  call.then(
    () => undefined,
    (error: { code?: number; details?: string }) => error,
  );

async function sinkFailures(gate: TestGateway): Promise<number> {
  const text = await (await fetch(`${gate.adminUrl}/metrics`)).text();
  const value = sampleValue(parseExposition(text), 'etcdgate_audit_sink_failures_total');
  return Number.isNaN(value) ? 0 : value;
}

describe('audit.onFailure: deny', () => {
  it('refuses calls once the buffer is full, and recovers when the sink comes back', async () => {
    const port = await freePort();
    const gate = await gatewayWithDeadSink(port, 'deny');
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    let receiver: SyslogReceiver | undefined;
    try {
      let accepted = 0;
      let refusal: { code?: number; details?: string } | undefined;
      for (let i = 0; i < 4 * BUFFER && refusal === undefined; i += 1) {
        refusal = await outcome(put(client, `/sink-deny/${String(i).padStart(4, '0')}`));
        if (refusal === undefined) accepted += 1;
      }
      expect(refusal).toMatchObject({ code: 14, details: 'etcdgate: audit sink unavailable' });
      expect(accepted).toBeLessThanOrEqual(BUFFER);
      // Still refusing: nothing drains into a dead sink.
      expect(await outcome(put(client, '/sink-deny/again'))).toMatchObject({ code: 14, details: 'etcdgate: audit sink unavailable' });
      expect(await sinkFailures(gate)).toBeGreaterThan(0);
      expect((await fetch(`${gate.adminUrl}/readyz`)).status).toBe(503);

      receiver = await startSyslogReceiver(port, stack.pki.gateServer);
      expect(receiver.port).toBe(port);
      const deadline = Date.now() + 20_000;
      let recovered: { code?: number } | undefined = { code: -1 };
      while (recovered !== undefined && Date.now() < deadline) {
        recovered = await outcome(put(client, '/sink-deny/recovered'));
        if (recovered !== undefined) await new Promise((r) => setTimeout(r, 100));
      }
      expect(recovered).toBeUndefined();
      expect((await fetch(`${gate.adminUrl}/readyz`)).status).toBe(200);

      // Every record buffered during the outage reached the receiver, in order.
      await gate.gateway.flushAudit();
      // Call records only: the connection's own open record comes first.
      const calls = receiver.records.filter((r) => (r['etcdgate'] as { event_kind?: string } | undefined)?.event_kind === 'call');
      const keys = calls.map((r) => (r['etcd'] as { request?: { key?: string } } | undefined)?.request?.key);
      const expected = Array.from({ length: accepted }, (_, i) => `/sink-deny/${String(i).padStart(4, '0')}`);
      expect(keys.slice(0, accepted)).toEqual(expected);
      expect(keys).toContain('/sink-deny/recovered');
    } finally {
      client.close();
      await gate.stop();
      await receiver?.close();
    }
  });
});

describe('audit.onFailure: allow', () => {
  it('keeps serving calls when the sink is down, counting the records it drops', async () => {
    const port = await freePort();
    const gate = await gatewayWithDeadSink(port, 'allow');
    const client = rawClient(gate.endpoint, stack.pki, 'root');
    try {
      for (let i = 0; i < 3 * BUFFER; i += 1) {
        expect(await outcome(put(client, `/sink-allow/${String(i)}`))).toBeUndefined();
      }
      expect(await sinkFailures(gate)).toBeGreaterThanOrEqual(2 * BUFFER);
      expect((await fetch(`${gate.adminUrl}/readyz`)).status).toBe(200);
    } finally {
      client.close();
      await gate.stop();
    }
  });
});
