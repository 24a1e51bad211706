/**
 * HTTP/1.1 on the client port, attacked the ways an HTTP/1.1 server is: request
 * smuggling (Content-Length with Transfer-Encoding, two Content-Lengths, bad chunk
 * sizes), oversized heads, slow heads and slow bodies, bodies over server.maxRecvBytes,
 * idle keep-alive connections. Each refusal is answered and the connection closed, the
 * smuggled request never reaches etcd, and a well-behaved client is served meanwhile.
 * Keep-alive, pipelining (run in order: a read sees the write pipelined before it),
 * chunked bodies and a client without ALPN are served.
 */
import type * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { curl } from './support/curl.js';
import { valueInEtcd } from './support/enforcement.js';
import { rawClient } from './support/raw-client.js';
import { rawTls, statuses, type RawConnection } from './support/raw-http.js';
import { useGatewayStack } from './support/stack.js';
import type { TestGateway } from './support/gateway.js';

const stack = useGatewayStack({ gateway: false });
let gate: TestGateway;
let direct: grpc.Client;

beforeAll(async () => {
  gate = await stack.startGateway({
    overrides: {
      server: { maxRecvBytes: 1024 },
      gateway: { headersTimeoutMs: 600, bodyTimeoutMs: 600, idleTimeoutMs: 900, maxHeaderBytes: 2048 },
    },
  });
  direct = rawClient(stack.etcd.endpoints[0] ?? '', stack.pki, 'root');
});
afterAll(async () => {
  direct.close();
  await gate.stop();
});

const b64 = (text: string): string => Buffer.from(text).toString('base64');
const port = (): number => gate.gateway.port;

function connect(alpn?: readonly string[]): Promise<RawConnection> {
  return rawTls(port(), { ca: stack.pki.ca, client: stack.pki.client('root'), ...(alpn === undefined ? {} : { alpn }) });
}

function request(path: string, body: string, extra = ''): string {
  return `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${extra}\r\n${body}`;
}

/** Waits until the server closed the connection; returns what it sent. */
async function untilClosed(connection: RawConnection): Promise<string> {
  await vi.waitFor(() => expect(connection.closed()).toBe(true), { timeout: 10_000, interval: 20 });
  return connection.received();
}

/** A well-behaved client, asked while an attack is under way, is answered. */
async function stillServed(): Promise<void> {
  const result = await curl(`https://127.0.0.1:${port()}/v3/kv/range`, { ca: stack.pki.ca, client: stack.pki.client('root'), body: '{"key":"eA=="}' });
  expect(result.status, result.stderr).toBe(200);
}

const smuggled = (key: string): string => request('/v3/kv/put', JSON.stringify({ key: b64(key), value: b64('smuggled') }));

describe('request smuggling is refused with 400 and the connection closed', () => {
  it('Content-Length together with Transfer-Encoding (CL.TE and TE.CL)', async () => {
    for (const [name, head] of [
      ['cl-te', 'Content-Length: 4\r\nTransfer-Encoding: chunked'],
      ['te-cl', 'Transfer-Encoding: chunked\r\nContent-Length: 300'],
    ] as const) {
      const key = `/smuggle/${name}`;
      const connection = await connect();
      connection.write(`POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\n${head}\r\n\r\n0\r\n\r\n${smuggled(key)}`);
      const answer = await untilClosed(connection);
      expect(statuses(answer)).toEqual([400]);
      expect(answer).toMatch(/connection: close/iu);
      expect(await valueInEtcd(direct, key)).toBeUndefined();
    }
    await stillServed();
  });

  it('two different Content-Lengths, an obfuscated Transfer-Encoding, a bad chunk size', async () => {
    const attacks = [
      `POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\n{}`,
      `POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n2\r\n{}\r\n0\r\n\r\n`,
      `POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n`,
      `POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2;${'x'.repeat(20_000)}\r\n{}\r\n0\r\n\r\n`,
      `POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\nContent-Length: -1\r\n\r\n`,
    ];
    for (const attack of attacks) {
      const connection = await connect();
      connection.write(`${attack}${smuggled('/smuggle/other')}`);
      const answer = await untilClosed(connection);
      expect(statuses(answer)[0], attack.slice(0, 120)).toBeGreaterThanOrEqual(400);
      expect(statuses(answer)).toHaveLength(1);
    }
    expect(await valueInEtcd(direct, '/smuggle/other')).toBeUndefined();
    await stillServed();
  });

  it('a well-formed chunked body is served', async () => {
    const connection = await connect();
    const body = JSON.stringify({ key: b64('/chunked'), value: b64('ok') });
    connection.write(`POST /v3/kv/put HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n${body.slice(0, 5)}\r\n${(body.length - 5).toString(16)}\r\n${body.slice(5)}\r\n0\r\n\r\n`);
    await vi.waitFor(() => expect(statuses(connection.received())).toEqual([200]), { timeout: 10_000 });
    expect(await valueInEtcd(direct, '/chunked')).toBe('ok');
    expect(connection.closed()).toBe(false);
    connection.destroy();
  });
});

describe('size and time limits', () => {
  it('a head over gateway.maxHeaderBytes gets 431 and the connection closed', async () => {
    const connection = await connect();
    connection.write(`POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\nX-Big: ${'a'.repeat(4096)}\r\nContent-Length: 2\r\n\r\n{}`);
    const answer = await untilClosed(connection);
    expect(statuses(answer)).toEqual([431]);
  });

  it('a body over server.maxRecvBytes gets 413 (declared or chunked) and the connection closed', async () => {
    const declared = await connect();
    declared.write(`POST /v3/kv/put HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5000\r\n\r\n{"key":`);
    const first = await untilClosed(declared);
    expect(statuses(first)).toEqual([413]);
    expect(first).toContain('"code":8');

    const chunked = await connect();
    const big = JSON.stringify({ key: b64('/big'), value: b64('v'.repeat(2000)) });
    chunked.write(`POST /v3/kv/put HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n${big.length.toString(16)}\r\n${big}\r\n`);
    expect(statuses(await untilClosed(chunked))).toEqual([413]);
    expect(await valueInEtcd(direct, '/big')).toBeUndefined();
    await stillServed();
  });

  it('slow headers: 408 and closed once gateway.headersTimeoutMs passes, others served meanwhile', async () => {
    const connection = await connect();
    connection.write('POST /v3/kv/range HTTP/1.1\r\nHost: localhost\r\n');
    await stillServed();
    const answer = await untilClosed(connection);
    expect(statuses(answer)).toEqual([408]);
  });

  it('slow body: 408 and closed once gateway.bodyTimeoutMs passes', async () => {
    const connection = await connect();
    connection.write(`POST /v3/kv/put HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n{"key":`);
    await stillServed();
    const answer = await untilClosed(connection);
    expect(statuses(answer)).toEqual([408]);
  });

  it('an idle keep-alive connection is closed after gateway.idleTimeoutMs', async () => {
    const connection = await connect();
    connection.write(request('/v3/kv/range', '{"key":"eA=="}'));
    await vi.waitFor(() => expect(statuses(connection.received())).toEqual([200]), { timeout: 10_000 });
    await untilClosed(connection);
  });
});

describe('keep-alive, pipelining, ALPN', () => {
  it('pipelined requests are answered in order on one connection', async () => {
    const put = (key: string, value: string): string => request('/v3/kv/put', JSON.stringify({ key: b64(key), value: b64(value) }));
    const range = (key: string): string => request('/v3/kv/range', JSON.stringify({ key: b64(key) }));
    const connection = await connect();
    connection.write(put('/pipe/1', 'first') + put('/pipe/2', 'second') + range('/pipe/1') + range('/pipe/2') + request('/nothing', ''));
    await vi.waitFor(() => expect(statuses(connection.received())).toEqual([200, 200, 200, 200, 404]), { timeout: 10_000 });
    const text = connection.received();
    expect(text.indexOf(b64('first'))).toBeGreaterThan(0);
    expect(text.indexOf(b64('first'))).toBeLessThan(text.indexOf(b64('second')));
    expect(connection.closed()).toBe(false);
    connection.destroy();
  });

  it('more than 16 requests pipelined ahead: the connection is dropped, others served', async () => {
    const connection = await connect();
    connection.write(request('/v3/kv/range', '{"key":"eA=="}').repeat(40));
    const answer = await untilClosed(connection);
    expect(statuses(answer).length).toBeLessThan(40);
    await stillServed();
  });

  it('curl reuses one keep-alive connection for several requests', async () => {
    const url = `https://127.0.0.1:${port()}/v3/kv/range`;
    const result = await curl(url, { ca: stack.pki.ca, client: stack.pki.client('root'), body: '{"key":"eA=="}', args: ['-v', '--next', '--http1.1', '--cacert', stack.pki.ca, '--cert', stack.pki.client('root').cert, '--key', stack.pki.client('root').key, '-d', '{"key":"eQ=="}', url] });
    expect(result.status).toBe(200);
    expect(result.stderr).toMatch(/Re-using existing connection/u);
  });

  it('a client without ALPN is served HTTP/1.1 (as etcd serves it)', async () => {
    const connection = await connect([]);
    expect(connection.alpn()).toBe(false);
    connection.write(request('/v3/kv/range', '{"key":"eA=="}'));
    await vi.waitFor(() => expect(statuses(connection.received())).toEqual([200]), { timeout: 10_000 });
    connection.destroy();
  });

  it('a client offering h2 and http/1.1 gets h2 (gRPC keeps working)', async () => {
    const connection = await connect(['h2', 'http/1.1']);
    expect(connection.alpn()).toBe('h2');
    connection.destroy();
  });
});
