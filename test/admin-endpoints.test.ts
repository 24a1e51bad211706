/**
 * Proves the admin listener's contract: /healthz answers while the process lives,
 * /readyz follows the readiness callback (200 vs 503 with the checks as JSON), /metrics
 * serves the registry with its content type, unknown paths are 404 and other methods
 * 405; that close() also drops idle keep-alive connections; and that TLS works.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startAdminServer } from '../src/observability/admin-server.js';
import type { AdminServer, Readiness } from '../src/observability/admin-server.js';
import { createPromMetrics } from '../src/observability/metrics.js';

interface Reply {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function request(port: number, method: string, urlPath: string, agent?: http.Agent): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path: urlPath, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('admin server over HTTP', () => {
  const { metrics, registry } = createPromMetrics({ version: 'admin-test' });
  let readiness: Readiness = { ready: false, checks: { policy: true, upstream: false } };
  let server: AdminServer;

  beforeAll(async () => {
    server = await startAdminServer({ host: '127.0.0.1', port: 0, registry, readiness: () => readiness });
  });
  afterAll(async () => {
    await server.close();
  });

  it('binds a real port when asked for port 0', () => {
    expect(server.port).toBeGreaterThan(0);
  });

  it('answers /healthz with 200 ok', async () => {
    const reply = await request(server.port, 'GET', '/healthz');
    expect(reply.status).toBe(200);
    expect(reply.body).toBe('ok');
  });

  it('answers /readyz with 503 and the checks while not ready, 200 once ready', async () => {
    readiness = { ready: false, checks: { policy: true, upstream: false } };
    const notReady = await request(server.port, 'GET', '/readyz');
    expect(notReady.status).toBe(503);
    expect(notReady.headers['content-type']).toBe('application/json');
    expect(JSON.parse(notReady.body)).toEqual({ ready: false, checks: { policy: true, upstream: false } });

    readiness = { ready: true, checks: { policy: true, upstream: true } };
    const ready = await request(server.port, 'GET', '/readyz');
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.body)).toEqual({ ready: true, checks: { policy: true, upstream: true } });

    readiness = { ready: false, checks: { policy: false, upstream: true } };
    const again = await request(server.port, 'GET', '/readyz?verbose=1');
    expect(again.status).toBe(503);
    expect(JSON.parse(again.body)).toEqual({ ready: false, checks: { policy: false, upstream: true } });
  });

  it('serves /metrics with the registry content type and current values', async () => {
    metrics.requestFinished('etcdserverpb.KV', 'Range', 'allow', 0, 0.001);
    metrics.requestFinished('etcdserverpb.KV', 'Range', 'allow', 0, 0.001);
    const reply = await request(server.port, 'GET', '/metrics');
    expect(reply.status).toBe(200);
    expect(reply.headers['content-type']).toBe(registry.contentType);
    expect(reply.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(reply.body).toContain('# TYPE etcdgate_requests_total counter');
    expect(reply.body).toContain(
      'etcdgate_requests_total{service="etcdserverpb.KV",method="Range",decision="allow",code="OK",protocol="grpc"} 2',
    );
    expect(reply.body).toContain('etcdgate_build_info{version="admin-test"');
  });

  it('answers unknown paths with 404', async () => {
    for (const urlPath of ['/', '/metricsx', '/debug/pprof', '/healthz/']) {
      const reply = await request(server.port, 'GET', urlPath);
      expect(reply.status, urlPath).toBe(404);
    }
  });

  it('answers other methods with 405 and Allow: GET', async () => {
    for (const [method, urlPath] of [['POST', '/metrics'], ['PUT', '/healthz'], ['DELETE', '/readyz'], ['HEAD', '/healthz']] as const) {
      const reply = await request(server.port, method, urlPath);
      expect(reply.status, `${method} ${urlPath}`).toBe(405);
      expect(reply.headers['allow']).toBe('GET');
    }
  });
});

describe('admin server close()', () => {
  it('closes idle keep-alive connections and stops listening', async () => {
    const { registry } = createPromMetrics({ version: 'close-test' });
    const server = await startAdminServer({ host: '127.0.0.1', port: 0, registry, readiness: () => ({ ready: true, checks: {} }) });
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    const sockets: Socket[] = [];
    agent.on('free', (socket: Socket) => {
      if (!sockets.includes(socket)) sockets.push(socket);
    });
    try {
      const reply = await request(server.port, 'GET', '/healthz', agent);
      expect(reply.status).toBe(200);
      expect(sockets).toHaveLength(1);
      const socket = sockets[0] as Socket;
      const socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
      expect(socket.destroyed).toBe(false);

      // Resolves only if the idle keep-alive socket is closed too.
      await server.close();
      await socketClosed;
      expect(socket.destroyed).toBe(true);
      await expect(request(server.port, 'GET', '/healthz')).rejects.toThrow(/ECONNREFUSED/);
      // A second close() is harmless.
      await server.close();
    } finally {
      agent.destroy();
    }
  });

  it('rejects when the port is taken', async () => {
    const { registry } = createPromMetrics({ version: 'busy-test' });
    const first = await startAdminServer({ host: '127.0.0.1', port: 0, registry, readiness: () => ({ ready: true, checks: {} }) });
    try {
      await expect(
        startAdminServer({ host: '127.0.0.1', port: first.port, registry, readiness: () => ({ ready: true, checks: {} }) }),
      ).rejects.toThrow(/EADDRINUSE/);
    } finally {
      await first.close();
    }
  });
});

describe('admin server over HTTPS', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-admin-tls-'));
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-subj', '/CN=etcdgate-admin-test', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '2',
      '-keyout', path.join(dir, 'admin.key'), '-out', path.join(dir, 'admin.crt'),
    ], { stdio: 'ignore' });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('serves the same routes over TLS with the configured certificate', async () => {
    const { registry } = createPromMetrics({ version: 'tls-test' });
    const server = await startAdminServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      readiness: () => ({ ready: true, checks: { tls: true } }),
      tls: { cert: path.join(dir, 'admin.crt'), key: path.join(dir, 'admin.key') },
    });
    try {
      const ca = readFileSync(path.join(dir, 'admin.crt'));
      const get = (urlPath: string): Promise<{ status: number; body: string }> =>
        new Promise((resolve, reject) => {
          https
            .get({ host: '127.0.0.1', port: server.port, path: urlPath, ca, agent: false }, (res) => {
              const chunks: Buffer[] = [];
              res.on('data', (chunk: Buffer) => chunks.push(chunk));
              res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
            })
            .on('error', reject);
        });
      expect(await get('/healthz')).toEqual({ status: 200, body: 'ok' });
      expect(await get('/readyz')).toEqual({ status: 200, body: '{"ready":true,"checks":{"tls":true}}' });
      expect((await get('/metrics')).body).toContain('etcdgate_build_info{version="tls-test"');
      // Plain HTTP to the TLS port does not get an answer from the routes.
      await expect(request(server.port, 'GET', '/healthz')).rejects.toThrow();
    } finally {
      await server.close();
    }
  });
});
