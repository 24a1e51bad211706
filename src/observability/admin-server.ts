/**
 * The admin HTTP(S) listener: GET /metrics (Prometheus exposition), GET /healthz
 * (liveness: the process answers) and GET /readyz (readiness: every check passes).
 * It is separate from the client-facing gRPC port so that scraping and probes never
 * need a client certificate and never count as etcd traffic.
 */
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import type { Logger } from './logger.js';

/** What the admin server reports on /readyz. */
export interface Readiness {
  readonly ready: boolean;
  readonly checks: Record<string, boolean>;
}

/** Options for startAdminServer. */
export interface AdminServerOptions {
  readonly host: string;
  /** 0 picks a free port; the chosen one is returned. */
  readonly port: number;
  readonly registry: Registry;
  /** Called on every /readyz; must be cheap and must not throw. */
  readonly readiness: () => Readiness;
  /** PEM file paths; plain HTTP when absent. */
  readonly tls?: { readonly cert: string; readonly key: string };
  readonly logger?: Logger;
}

/** A running admin server. */
export interface AdminServer {
  /** The port actually bound. */
  readonly port: number;
  /** Stops listening and closes every connection, idle keep-alive ones included. */
  close(): Promise<void>;
}

function send(res: ServerResponse, status: number, contentType: string, body: string, extra?: Record<string, string>): void {
  res.writeHead(status, { 'Content-Type': contentType, 'Cache-Control': 'no-store', ...extra });
  res.end(body);
}

async function handle(req: IncomingMessage, res: ServerResponse, options: AdminServerOptions): Promise<void> {
  // Only the path matters; a query string (e.g. from a probe) is ignored.
  const url = req.url ?? '/';
  const queryAt = url.indexOf('?');
  const path = queryAt === -1 ? url : url.slice(0, queryAt);
  const known = path === '/metrics' || path === '/healthz' || path === '/readyz';
  if (!known) {
    send(res, 404, 'text/plain; charset=utf-8', 'not found\n');
    return;
  }
  if (req.method !== 'GET') {
    send(res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { Allow: 'GET' });
    return;
  }
  if (path === '/healthz') {
    send(res, 200, 'text/plain; charset=utf-8', 'ok');
    return;
  }
  if (path === '/readyz') {
    const { ready, checks } = options.readiness();
    send(res, ready ? 200 : 503, 'application/json', JSON.stringify({ ready, checks }));
    return;
  }
  const body = await options.registry.metrics();
  send(res, 200, options.registry.contentType, body);
}

/** Starts the admin server and resolves once it listens. */
export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    handle(req, res, options).catch((err: unknown) => {
      options.logger?.error({ err, path: req.url }, 'admin request failed');
      if (!res.headersSent) send(res, 500, 'text/plain; charset=utf-8', 'internal error\n');
      else res.destroy();
    });
  };

  let server: Server;
  if (options.tls !== undefined) {
    const [cert, key] = await Promise.all([readFile(options.tls.cert), readFile(options.tls.key)]);
    server = https.createServer({ cert, key }, listener);
  } else {
    server = http.createServer(listener);
  }

  await new Promise<void>((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err: Error) => options.logger?.error({ err }, 'admin server error'));

  const port = (server.address() as AddressInfo).port;
  options.logger?.info({ host: options.host, port, tls: options.tls !== undefined }, 'admin server listening');

  let closing: Promise<void> | undefined;
  return {
    port,
    close(): Promise<void> {
      closing ??= new Promise<void>((resolve, reject) => {
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        // server.close() only stops accepting; keep-alive sockets (Prometheus keeps one)
        // would hold it open until they time out.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
