/**
 * PROXY protocol behind a real HAProxy (Debian's haproxy, TCP mode, `send-proxy-v2`) in
 * front of etcdgate, with clients bound to 127.0.0.2 (inside the rules) and 127.0.0.3
 * (outside). etcdgate believes the header only from `proxyProtocol.trustedFrom`
 * (127.0.0.1, where HAProxy connects from), and the real client address then feeds
 * `allowedSources`, the bindings' `match.source` and the audit records:
 *  - tenant-a via HAProxy from 127.0.0.2: served, bound by its source rule, recorded
 *    with source 127.0.0.2 and the client's own port; from 127.0.0.3: refused
 *    (`source_not_allowed`, recorded with 127.0.0.3);
 *  - etcdctl through HAProxy works (put and get);
 *  - from the balancer's address without a header: refused (`proxy_protocol`);
 *  - a client outside trustedFrom that sends a PROXY header to claim another address is
 *    not believed (the header is not TLS: `no_tls`);
 *  - a v1 header (`send-proxy`) from the trusted address works the same way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import * as net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { etcdctl } from './support/etcdctl.js';
import type { TestGateway } from './support/gateway.js';
import { freePort } from './support/ports.js';
import { callFrom, tcpProbe } from './support/source-client.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
let gate: TestGateway;
let haproxy: ChildProcess | undefined;
let haproxyPort = 0;
let dir = '';

const POLICY = {
  roles: { writer: { keys: [{ prefix: '/lb/', access: 'readwrite' }] } },
  bindings: [
    { match: { cn: 'tenant-a', source: ['127.0.0.2/32'] }, roles: ['writer'] },
    { match: { cn: 'tenant-b' }, roles: ['writer'] },
  ],
};

const gatePort = (): number => Number(new URL(gate.endpoint).port);

interface AuditRecord {
  event: { reason?: string };
  source?: { ip?: string; port?: number };
  user?: { name?: string };
  etcd?: { decision?: { reason?: string; role?: string } };
  etcdgate: { event_kind: string };
}

async function recordWith(port: number, kind: string): Promise<AuditRecord | undefined> {
  let found: AuditRecord | undefined;
  await expect
    .poll(async () => {
      found = ((await gate.auditRecords()) as unknown as AuditRecord[]).find((r) => r.etcdgate.event_kind === kind && r.source?.port === port);
      return found;
    })
    .toBeDefined();
  return found;
}

/** Waits until HAProxy accepts TCP connections. */
async function listening(port: number): Promise<void> {
  await vi.waitFor(
    () =>
      new Promise<void>((resolve, reject) => {
        const socket = net.connect({ host: '127.0.0.1', port }, () => {
          socket.destroy();
          resolve();
        });
        socket.on('error', reject);
      }),
    { timeout: 10_000, interval: 100 },
  );
}

beforeAll(async () => {
  gate = await stack.startGateway({
    policy: POLICY,
    overrides: { server: { allowedSources: ['127.0.0.1/32', '127.0.0.2/32'], proxyProtocol: { trustedFrom: ['127.0.0.1/32'] } } },
  });
  dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-haproxy-'));
  haproxyPort = await freePort();
  const config = path.join(dir, 'haproxy.cfg');
  await writeFile(
    config,
    [
      'global',
      '  maxconn 200',
      'defaults',
      '  mode tcp',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      'frontend etcd_clients',
      `  bind 127.0.0.1:${haproxyPort}`,
      `  bind 127.0.0.2:${haproxyPort}`,
      `  bind 127.0.0.3:${haproxyPort}`,
      '  default_backend etcdgate',
      'backend etcdgate',
      // HAProxy connects from 127.0.0.1, the one trusted address.
      `  server gate 127.0.0.1:${gatePort()} send-proxy-v2 source 127.0.0.1`,
      '',
    ].join('\n'),
  );
  haproxy = spawn('/usr/sbin/haproxy', ['-f', config, '-db'], { stdio: ['ignore', 'ignore', 'pipe'] });
  await listening(haproxyPort);
}, 60_000);

afterAll(async () => {
  haproxy?.kill('SIGTERM');
  await gate?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
});

/** A put as `name` from `from`, to HAProxy (default) or straight to etcdgate. */
const putVia = (port: number, name: string, from: string, key: string, preface?: Buffer): ReturnType<typeof callFrom> =>
  callFrom(port, stack.pki, name, from, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse', preface);

describe('behind HAProxy with PROXY protocol v2', () => {
  it("tenant-a from 127.0.0.2 is served and recorded with its own address; from 127.0.0.3 it is refused", async () => {
    const inside = await putVia(haproxyPort, 'tenant-a', '127.0.0.2', '/lb/a/1');
    expect(inside).toMatchObject({ grpcStatus: 0 });
    expect(await recordWith(inside.localPort, 'call')).toMatchObject({ source: { ip: '127.0.0.2', port: inside.localPort }, user: { name: 'tenant-a' }, etcd: { decision: { role: 'writer' } } });

    const outside = await putVia(haproxyPort, 'tenant-a', '127.0.0.3', '/lb/a/2');
    expect(outside.grpcStatus).toBeUndefined();
    expect(await recordWith(outside.localPort, 'handshake.refused')).toMatchObject({ event: { reason: 'source_not_allowed' }, source: { ip: '127.0.0.3' } });
  });

  it('match.source sees the real client: tenant-a from the balancer\'s own address has no binding', async () => {
    // 127.0.0.1 is allowed to connect at all, but tenant-a's binding wants 127.0.0.2.
    const refused = await putVia(haproxyPort, 'tenant-a', '127.0.0.1', '/lb/a/3');
    expect(refused).toMatchObject({ grpcStatus: 7 });
    expect(await recordWith(refused.localPort, 'call')).toMatchObject({ source: { ip: '127.0.0.1' }, etcd: { decision: { reason: 'no binding' } } });
  });

  it('etcdctl works through HAProxy', async () => {
    const options = { endpoint: `https://127.0.0.1:${haproxyPort}`, cacert: stack.pki.ca, ...stack.pki.client('tenant-b') };
    expect(await etcdctl(['put', '/lb/b/etcdctl', 'v'], options)).toMatchObject({ code: 0 });
    const got = await etcdctl(['get', '/lb/b/etcdctl', '--print-value-only'], options);
    expect(got).toMatchObject({ code: 0 });
    expect(got.stdout.trim()).toBe('v');
  });
});

describe('the header is required from the balancer and believed from nobody else', () => {
  it('a connection from the trusted address without a header is refused (proxy_protocol)', async () => {
    const direct = await putVia(gatePort(), 'tenant-b', '127.0.0.1', '/lb/b/direct');
    expect(direct.grpcStatus).toBeUndefined();
    expect(await recordWith(direct.localPort, 'handshake.refused')).toMatchObject({ event: { reason: 'proxy_protocol' }, source: { ip: '127.0.0.1' } });
  });

  it('a client outside trustedFrom cannot claim another address with a header of its own', async () => {
    const forged = Buffer.from(`PROXY TCP4 127.0.0.2 127.0.0.1 40000 ${gatePort()}\r\n`);
    const probe = await tcpProbe(gatePort(), '127.0.0.2', forged);
    expect(probe.closedByServer).toBe(true);
    expect(await recordWith(probe.localPort, 'handshake.refused')).toMatchObject({ event: { reason: 'no_tls' }, source: { ip: '127.0.0.2' } });
  });

  it('a v1 header from the trusted address is honoured too', async () => {
    const header = Buffer.from(`PROXY TCP4 127.0.0.2 127.0.0.1 45678 ${gatePort()}\r\n`);
    const viaV1 = await putVia(gatePort(), 'tenant-a', '127.0.0.1', '/lb/a/v1', header);
    expect(viaV1).toMatchObject({ grpcStatus: 0 });
    expect(await recordWith(45678, 'call')).toMatchObject({ source: { ip: '127.0.0.2', port: 45678 }, user: { name: 'tenant-a' } });
  });
});
