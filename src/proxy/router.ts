/**
 * Where every request a client opens on etcdgate's HTTP/2 listener goes, before any of
 * its message is read: a gRPC call to a known etcd method is admitted by the gate and
 * handed to its service's flow; anything else is refused at once and still recorded,
 * like every other call: an unknown method gets UNIMPLEMENTED (kube-apiserver falls back
 * from etcd 3.7's RangeStream on exactly that), a request that is not gRPC gets HTTP 415
 * unless a handler for plain HTTP requests is given (the JSON gateway).
 */
import type { MethodSpec } from '../etcd/types.js';
import type { Budget } from '../transport/budget.js';
import { encodeStateless } from '../transport/hpack/index.js';
import { GrpcServerCall, type ServerCallLimits } from '../transport/grpc/server-call.js';
import { Code } from '../transport/grpc/status.js';
import { NO_ERROR } from '../transport/http2/constants.js';
import type { Http2Connection } from '../transport/http2/connection.js';
import { fieldValue } from '../transport/http2/fields.js';
import type { Http2Stream } from '../transport/http2/stream.js';
import type { RpcCall, RpcHandler } from './call.js';
import type { Client, Gate } from './gate.js';
import type { Service } from './services.js';
import { NOT_GRPC_DECISION, UNKNOWN_METHOD, UNKNOWN_METHOD_DECISION, statusOf } from './status.js';

export interface RouterDeps {
  readonly gate: Gate;
  readonly services: ReadonlyMap<string, Service>;
  readonly limits: ServerCallLimits;
  /** Request bytes held (large messages being read, inflated messages), per connection and overall. */
  readonly requestBudget: Budget;
  /** The verified client of each connection (set by the listener). */
  readonly clients: ReadonlyMap<Http2Connection, Client>;
  /** Serves an HTTP/2 request that is not gRPC; absent: HTTP 415. */
  readonly onHttpRequest?: (client: Client, stream: Http2Stream, fields: string[], endStream: boolean) => void;
}

/** A call refused before anything was read: whatever the client still sends is dropped. */
const DROP: RpcHandler = {
  onMessage: () => undefined,
  onHalfClose: () => undefined,
  onCancel: () => undefined,
  onDrain: () => undefined,
};

const UNSUPPORTED_MEDIA_TYPE = encodeStateless([':status', '415', 'content-type', 'text/plain']);

/** The table entry recorded for a path that is not an etcd method. */
function unknownSpec(path: string): MethodSpec {
  return {
    path,
    service: 'unknown',
    method: 'unknown',
    shape: 'unary',
    action: 'etcd.unknown',
    category: 'database',
    eventType: 'info',
    decode: () => {
      throw new Error('never decoded');
    },
    idempotent: false,
    invalidates: 'none',
    rewrite: 'none',
    cacheable: false,
    values: 'none',
  };
}

/** Builds the function the HTTP/2 server calls for every stream a client opens. */
export function streamRouter(deps: RouterDeps): (connection: Http2Connection, stream: Http2Stream, fields: string[], endStream: boolean) => void {
  const { gate, services } = deps;

  return (connection, stream, fields, endStream) => {
    const started = gate.start();
    const client = deps.clients.get(connection);
    const path = fieldValue(fields, ':path') ?? '';
    const contentType = fieldValue(fields, 'content-type') ?? '';
    if (client === undefined) {
      // Only verified sockets reach the HTTP/2 server; a stream without one is a bug: refuse it.
      stream.reset(NO_ERROR);
      return;
    }
    // etcd's own test for gRPC: a content-type containing application/grpc (embed/serve.go).
    if (!contentType.includes('application/grpc')) {
      if (deps.onHttpRequest !== undefined) {
        deps.onHttpRequest(client, stream, fields, endStream);
        return;
      }
      stream.sendHeaders(UNSUPPORTED_MEDIA_TYPE, true);
      if (!stream.remoteClosed) stream.reset(NO_ERROR);
      gate.refused(unknownSpec(path), client, { op: 'unknown', details: { path: path.slice(0, 256) } }, NOT_GRPC_DECISION, { code: Code.UNIMPLEMENTED, details: `HTTP 415: content-type ${contentType.slice(0, 64)}` }, started);
      return;
    }
    const call = new GrpcServerCall(stream, fields, deps.limits, deps.requestBudget);
    const service = services.get(path);
    if (service === undefined) {
      call.attach(DROP, false);
      const sent = call.end(UNKNOWN_METHOD);
      gate.refused(unknownSpec(path), client, { op: 'unknown', details: { path: path.slice(0, 256) } }, UNKNOWN_METHOD_DECISION, sent, started);
      return;
    }
    const { caller, refusal } = gate.admit(client);
    if (refusal !== undefined || caller === undefined) {
      call.attach(DROP, false);
      const decision = refusal ?? UNKNOWN_METHOD_DECISION;
      const sent = (call as RpcCall).end(statusOf(decision));
      gate.refused(service.spec, client, { op: service.spec.method }, decision, sent, started);
      return;
    }
    service.open(service.spec, caller, call, started);
  };
}
