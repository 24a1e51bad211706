/**
 * Calls refused before any decision, which still get the audit record and the metric
 * every other call gets. grpc-js refuses unknown methods (UNIMPLEMENTED), requests that
 * are not gRPC (a content-type other than application/grpc: HTTP 415), and a streaming
 * call's message that cannot be read (over server.maxRecvBytes, broken framing); what
 * was sent is read from the HTTP/2 stream itself. etcdgate refuses a unary call's
 * unreadable message itself (src/proxy/unary-call.ts) and records it here too.
 *
 * The HTTP/2 server behind grpc-js's connection injector is not part of grpc-js's API:
 * `findInjectedHttp2Server` looks it up defensively and returns undefined if grpc-js
 * changes (etcdgate then refuses to start), and test/bad-input.test.ts fails if these
 * records stop appearing.
 */
import type * as http2 from 'node:http2';
import type * as grpc from '@grpc/grpc-js';
import type { KeySummary } from '../audit/types.js';
import type { MethodSpec } from '../etcd/types.js';
import type { Decision } from '../policy/types.js';
import { callEvent, type ProxyContext } from './context.js';

/** The single HTTP/2 server grpc-js made for the connection injector, if it can be found. */
export function findInjectedHttp2Server(server: grpc.Server): http2.Http2Server | undefined {
  const servers: unknown = Reflect.get(server, 'http2Servers');
  if (!(servers instanceof Map) || servers.size !== 1) return undefined;
  const [candidate]: unknown[] = [...servers.keys()];
  return typeof candidate === 'object' && candidate !== null && 'on' in candidate ? (candidate as http2.Http2Server) : undefined;
}

const UNKNOWN_METHOD: Decision = { allowed: false, reason: 'unknown method' };
const NOT_GRPC: Decision = { allowed: false, reason: 'not a gRPC request' };
/** The decision of a call whose message was refused while being read (size, framing, encoding). */
export const UNREADABLE: Decision = { allowed: false, reason: 'message refused while being read' };

/** A status grpc-js sent by itself while reading a known method's message (etcd's and etcdgate's carry their own prefixes). */
function refusedWhileReading(trailers: http2.OutgoingHttpHeaders | undefined): { code: number; message: string } | undefined {
  const code = Number(trailers?.['grpc-status']);
  if (code !== 8 && code !== 13) return undefined;
  const raw = trailers?.['grpc-message'];
  const message = typeof raw === 'string' ? decodeURIComponent(raw) : '';
  if (message.startsWith('etcdgate:') || message.startsWith('etcdserver:')) return undefined;
  return { code, message };
}

function pseudoSpec(path: string): MethodSpec {
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
    values: 'none',
  };
}

/**
 * The audit record and metric of a call refused before any decision: by grpc-js (see
 * observeGrpcRefusal) or while etcdgate read a unary call's message (src/proxy/unary-call.ts).
 * Calls on a connection that is not a verified one have nobody to attribute them to.
 */
export function recordRefusal(
  context: ProxyContext,
  peer: string,
  path: string,
  known: MethodSpec | undefined,
  decision: Decision,
  result: { code: number; message: string },
  startNs: bigint,
): void {
  const connection = context.connections.get(peer);
  if (connection === undefined) return;
  const spec = known ?? pseudoSpec(path);
  const request: KeySummary = { op: known === undefined ? 'unknown' : spec.method, details: { path: path.slice(0, 256) } };
  const caller = { connection, permissions: context.policy.permissionsFor(connection.identity, connection.address) };
  const seconds = Number(process.hrtime.bigint() - startNs) / 1e9;
  const start = { date: new Date(Date.now() - seconds * 1000), ns: startNs };
  context.metrics.requestFinished(spec.service, spec.method, 'deny', result.code, seconds);
  context.auditor.record(callEvent(spec, caller, 'call', start, request, decision, result));
}

/** Audits and counts the stream if grpc-js refuses it before an etcdgate handler could. */
export function observeGrpcRefusal(
  stream: http2.ServerHttp2Stream,
  headers: http2.IncomingHttpHeaders,
  context: ProxyContext,
  methods: ReadonlyMap<string, MethodSpec>,
): void {
  const startNs = process.hrtime.bigint();
  // The stream no longer knows its session once closed: keep the socket now.
  const socket = stream.session?.socket;
  const path = headers[':path'] ?? '';
  const contentType = headers['content-type'] ?? '';
  stream.once('close', () => {
    const known = methods.get(path);
    let decision: Decision;
    let result: { code: number; message: string };
    if (!contentType.startsWith('application/grpc')) {
      decision = NOT_GRPC;
      result = { code: 12, message: `HTTP 415: content-type ${contentType.slice(0, 64)}` };
    } else if (known === undefined) {
      decision = UNKNOWN_METHOD;
      result = { code: 12, message: 'method not implemented' };
    } else {
      // A status sent before any message travels in the headers (a trailers-only response).
      const refused = refusedWhileReading(stream.sentTrailers ?? stream.sentHeaders);
      if (refused === undefined) return;
      decision = UNREADABLE;
      result = refused;
    }
    recordRefusal(context, `${socket?.remoteAddress ?? ''}:${socket?.remotePort ?? 0}`, path, known, decision, result, startNs);
  });
}
