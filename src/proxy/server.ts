/**
 * The gRPC server: one handler per streaming etcd RPC in the method table, registered
 * with identity (de)serializers so messages stay the bytes they were on the wire. Unary
 * methods are answered by etcdgate's own HTTP/2 code (src/proxy/stream-router.ts).
 * Methods not in the table are not registered, and grpc-js answers them UNIMPLEMENTED
 * (kube-apiserver falls back from etcd 3.7's RangeStream on exactly that).
 */
import * as grpc from '@grpc/grpc-js';
import { METHODS } from '../etcd/methods.js';
import type { MethodSpec } from '../etcd/types.js';
import type { LimitsConfig, ServerConfig } from '../config/types.js';
import type { ProxyContext } from './context.js';
import { passThrough } from './bidi.js';
import { leaseKeepAliveHandler } from './lease-keepalive.js';
import { serverStreamHandler } from './server-stream.js';
import { watchHandler } from './watch.js';

const WATCH = '/etcdserverpb.Watch/Watch';
const KEEPALIVE = '/etcdserverpb.Lease/LeaseKeepAlive';

function register(server: grpc.Server, context: ProxyContext, spec: MethodSpec): void {
  switch (spec.shape) {
    case 'unary':
      // Read and answered by etcdgate itself (src/proxy/stream-router.ts), never by grpc-js.
      return;
    case 'serverStream':
      server.register(spec.path, serverStreamHandler(context, spec), passThrough, passThrough, 'serverStream');
      return;
    case 'bidi':
      if (spec.path === WATCH) server.register(spec.path, watchHandler(context, spec), passThrough, passThrough, 'bidi');
      else if (spec.path === KEEPALIVE) server.register(spec.path, leaseKeepAliveHandler(context, spec), passThrough, passThrough, 'bidi');
      else throw new Error(`no handler for bidi method ${spec.path}`);
      return;
    case 'clientStream':
      throw new Error(`no handler for client-streaming method ${spec.path}`);
  }
}

/** Builds the gRPC server with every etcd method registered (connections are injected by the TLS listener). */
export function createGrpcServer(context: ProxyContext, config: ServerConfig, limits?: Pick<LimitsConfig, 'maxStreamsPerConnection'>): grpc.Server {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': config.maxRecvBytes,
    'grpc.max_send_message_length': config.maxSendBytes,
    // Sent to every client in SETTINGS: streams beyond it are refused by HTTP/2 itself.
    ...(limits === undefined ? {} : { 'grpc.max_concurrent_streams': limits.maxStreamsPerConnection }),
    'grpc.enable_channelz': 0,
  });
  for (const spec of METHODS.values()) register(server, context, spec);
  return server;
}
