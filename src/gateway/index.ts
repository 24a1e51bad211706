/**
 * src/gateway: etcd's JSON/HTTP gateway, served by etcdgate on the same listener and
 * port as gRPC, with the caller's identity from its certificate.
 *
 * - http1.ts / http2.ts: HTTP/1.1 connections (ALPN `http/1.1` or none) and non-gRPC
 *   HTTP/2 requests, each request one Exchange (exchange.ts);
 * - routes.ts: the paths etcd 3.4 serves and what everything else gets;
 * - json.ts: etcd's JSON form of its messages (protobufjs with protos/);
 * - handler.ts, call.ts, stream.ts: a JSON call becomes the protobuf request and takes
 *   the gRPC path's gate and flows (src/proxy): same identity, policy, limits, audit
 *   (plus the protocol) and metrics (protocol label);
 * - probes.ts: GET /version and GET /health;
 * - answers.ts: etcd's answer shapes (errors, text).
 *
 * Built once by the composition root; nothing here listens on its own.
 */
import type * as tls from 'node:tls';
import type { GatewayConfig } from '../config/types.js';
import type { Client } from '../proxy/gate.js';
import type { Http2Stream } from '../transport/http2/stream.js';
import { serveExchange, type HandlerDeps } from './handler.js';
import { Http1Gateway } from './http1.js';
import { Http2Exchange } from './http2.js';
import { EtcdJson } from './json.js';

export interface JsonGateway {
  /** Serves HTTP/1.1 on a verified socket of `client` that did not negotiate h2. */
  acceptHttp1(socket: tls.TLSSocket, client: Client): void;
  /** Serves a non-gRPC request on an HTTP/2 stream of `client`. */
  serveHttp2(client: Client, stream: Http2Stream, fields: string[], endStream: boolean): void;
  /** Stops taking requests: idle HTTP/1.1 connections close now, busy ones after their answer. */
  close(): void;
  /** Drops every HTTP/1.1 connection (end of the shutdown grace). */
  closeAll(): void;
}

/** Builds the gateway; throws if protos/ cannot be loaded (etcdgate then does not start). */
export function createJsonGateway(deps: Omit<HandlerDeps, 'json' | 'config'>, config: GatewayConfig): JsonGateway {
  const all: HandlerDeps = { ...deps, json: new EtcdJson(), config };
  const serve = serveExchange.bind(undefined, all);
  const http1 = new Http1Gateway(config, serve);
  return {
    acceptHttp1: (socket, client) => http1.accept(socket, client),
    serveHttp2: (client, stream, fields, endStream) => serve(new Http2Exchange(stream, fields, client, endStream)),
    close: () => http1.close(),
    closeAll: () => http1.closeAll(),
  };
}
