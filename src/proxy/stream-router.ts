/**
 * Which code answers each incoming HTTP/2 stream. grpc-js owns the client connections
 * (its connection injector: sessions, keepalive, graceful shutdown, stream limits); this
 * router takes the place of its 'stream' listener. A unary etcd method with a gRPC
 * content-type is read and answered by etcdgate itself (src/proxy/unary-call.ts and
 * src/proxy/unary.ts). Everything else, the streaming methods, unknown methods and
 * non-gRPC requests, goes to grpc-js as before, watched for the refusals grpc-js makes
 * on its own (src/proxy/transport-refusals.ts).
 */
import type * as http2 from 'node:http2';
import type { MethodSpec } from '../etcd/types.js';
import type { ProxyContext } from './context.js';
import type { Decision } from '../policy/types.js';
import { recordRefusal, observeGrpcRefusal, UNREADABLE } from './transport-refusals.js';
import { acceptUnaryCall, type EndedWhileReading, type UnaryCallHandlers, type UnaryCallLimits } from './unary-call.js';
import { serveUnary } from './unary.js';

/** The audit decision of a unary call that ended before its message was read. */
const ENDED_WHILE_READING: Readonly<Record<EndedWhileReading, Decision>> = {
  unreadable: UNREADABLE,
  deadline: { allowed: false, reason: 'deadline passed while the request was read' },
  cancelled: { allowed: false, reason: 'cancelled by the client while the request was read' },
};

type StreamListener = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => void;

/**
 * Installs the router on grpc-js's HTTP/2 server. Throws if that server does not have
 * exactly one 'stream' listener (grpc-js's), since then the routing cannot be trusted.
 */
export function routeStreams(
  http2Server: http2.Http2Server,
  context: ProxyContext,
  methods: ReadonlyMap<string, MethodSpec>,
  limits: UnaryCallLimits,
  /** Takes requests that are not gRPC (the JSON gateway, src/gateway); without it they get grpc-js's 415. */
  nonGrpc?: (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders) => void,
): void {
  const listeners = http2Server.listeners('stream');
  const grpcListener = listeners[0];
  if (listeners.length !== 1 || typeof grpcListener !== 'function') {
    throw new Error(`grpc-js's HTTP/2 server has ${listeners.length} stream listeners, expected 1`);
  }
  const toGrpc = grpcListener as StreamListener;
  // One handler pair per method, built here rather than per call.
  const handlers = new Map<string, UnaryCallHandlers>();
  for (const spec of methods.values()) {
    if (spec.shape !== 'unary') continue;
    handlers.set(spec.path, {
      onMessage: (call) => serveUnary(context, spec, call),
      onRefused: (call, status, why) => recordRefusal(context, call.peer, spec.path, spec, ENDED_WHILE_READING[why], { code: status.code, message: status.details }, call.startNs),
    });
  }
  http2Server.removeAllListeners('stream');
  http2Server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, flags: number, rawHeaders: string[]) => {
    // etcd's test for gRPC: a content-type containing application/grpc (embed/serve.go).
    if (nonGrpc !== undefined && headers['content-type']?.includes('application/grpc') !== true) {
      nonGrpc(stream, headers);
      return;
    }
    const path = headers[':path'];
    const unary = path === undefined ? undefined : handlers.get(path);
    if (unary !== undefined && headers['content-type']?.startsWith('application/grpc') === true) {
      acceptUnaryCall(stream, headers, limits, unary);
      return;
    }
    observeGrpcRefusal(stream, headers, context, methods);
    toGrpc.call(http2Server, stream, headers, flags, rawHeaders);
  });
}
