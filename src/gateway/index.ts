/**
 * src/gateway: etcd's JSON/HTTP gateway, served by etcdgate on the same listener and
 * port as gRPC, with the caller's identity from its certificate.
 *
 * - http1.ts / http2.ts: HTTP/1.1 connections (ALPN `http/1.1` or none) and non-gRPC
 *   HTTP/2 requests, each request one Exchange (exchange.ts);
 * - routes.ts: the paths etcd 3.4 serves and what everything else gets;
 * - json.ts: etcd's JSON form of its messages (protobufjs with protos/);
 * - handler.ts + unary.ts: a JSON call becomes the protobuf request and goes through
 *   the gRPC path's unary pipeline (src/proxy/unary.ts): same identity, policy,
 *   limits, audit (plus the protocol) and metrics (protocol label);
 * - probes.ts: GET /version and GET /health;
 * - answers.ts: etcd's answer shapes (errors, text).
 *
 * Built once by the composition root; nothing here listens on its own.
 */
import type * as http2 from 'node:http2';
import type * as tls from 'node:tls';
import type { GatewayConfig } from '../config/types.js';
import type { ProxyContext } from '../proxy/context.js';
import type { UnaryCallLimits } from '../proxy/unary-call.js';
import { serveExchange, type HandlerDeps } from './handler.js';
import { Http1Gateway } from './http1.js';
import { Http2Exchange } from './http2.js';
import { EtcdJson } from './json.js';

export interface JsonGateway {
  /** Serves HTTP/1.1 on a verified socket that did not negotiate h2; `peer` is its connection-table key. */
  acceptHttp1(socket: tls.TLSSocket, peer: string): void;
  /** Serves a non-gRPC request on an HTTP/2 stream. */
  serveHttp2(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders): void;
  /** Stops taking requests: idle HTTP/1.1 connections close now, busy ones after their answer. */
  close(): void;
  /** Drops every HTTP/1.1 connection (end of the shutdown grace). */
  closeAll(): void;
}

/** True for a request the gRPC server must take (etcd: HTTP/2 and a content-type containing application/grpc). */
export function isGrpcRequest(headers: http2.IncomingHttpHeaders): boolean {
  return headers['content-type']?.includes('application/grpc') === true;
}

/** Builds the gateway; throws if protos/ cannot be loaded (etcdgate then does not start). */
export function createJsonGateway(context: ProxyContext, config: GatewayConfig, limits: UnaryCallLimits): JsonGateway {
  const deps: HandlerDeps = { context, json: new EtcdJson(), limits, config };
  const serve = serveExchange.bind(undefined, deps);
  const http1 = new Http1Gateway(config, serve);
  return {
    acceptHttp1: (socket, peer) => http1.accept(socket, peer),
    serveHttp2: (stream, headers) => serve(new Http2Exchange(stream, headers)),
    close: () => http1.close(),
    closeAll: () => http1.closeAll(),
  };
}
