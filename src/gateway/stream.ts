/**
 * Streaming calls over the JSON gateway (watch, lease/keepalive, maintenance/snapshot,
 * election/observe), served by the gRPC path's own stream handlers (src/proxy/watch.ts,
 * lease-keepalive.ts, server-stream.ts): the gateway plays their grpc-js call. So a
 * watch over JSON is authorized per create request, answered in-band when refused,
 * limited, revalidated on policy reload and audited exactly as over gRPC.
 *
 * The JSON side is etcd's gateway's (grpc-gateway v1):
 * - the request body is a sequence of JSON request objects, sent to etcd one by one as
 *   each is complete; the body's end half-closes the call. A first object that is not
 *   a valid request is answered 500 (code 2, UNKNOWN) and nothing is called; a later
 *   one half-closes the call, as etcd's gateway does.
 * - each response message is written as `{"result":{...}}` and a newline, as soon as
 *   it arrives (chunked on HTTP/1.1); the answer is 200 once the first is written.
 * - a status that ends the call is written as `{"error":{"grpc_code","http_code",
 *   "message","http_status"}}`; if nothing was written yet, with the HTTP status of
 *   its code.
 *
 * Backpressure runs both ways: a client that stops reading pauses the relay (and the
 * watch handlers' unread-data bound applies); the body is paused while etcd is slow.
 * Streaming calls are the open-ended ones, so gateway.bodyTimeoutMs does not apply to
 * their body; over HTTP/1.1 the whole request must still arrive within
 * headersTimeoutMs + bodyTimeoutMs (Node's request timeout), the answer can run on.
 *
 * This adapter stands in until the proxy has one protocol-neutral stream pipeline;
 * the per-call context it passes (audit records with the HTTP transport, metrics
 * labelled protocol="http") is the only difference from a gRPC stream.
 */
import { EventEmitter } from 'node:events';
import * as grpc from '@grpc/grpc-js';
import type { Auditor, CallEvent, HttpTransport } from '../audit/types.js';
import type { MethodSpec } from '../etcd/types.js';
import type { Metrics } from '../observability/metrics-types.js';
import type { ProxyContext } from '../proxy/context.js';
import { leaseKeepAliveHandler } from '../proxy/lease-keepalive.js';
import { serverStreamHandler } from '../proxy/server-stream.js';
import type { Status } from '../proxy/status.js';
import { watchHandler } from '../proxy/watch.js';
import { httpStatusOf, sendStatus } from './answers.js';
import type { Exchange } from './exchange.js';
import { goJson, JsonMappingError, parseJsonValue, splitJsonValues, type MethodJson } from './json.js';

const WATCH = '/etcdserverpb.Watch/Watch';
const FIRST_MESSAGE_TOO_SLOW: Status = { code: 4, details: 'etcdgate: first request of the stream not received in time' };
const KEEPALIVE = '/etcdserverpb.Lease/LeaseKeepAlive';

/** Go's http.StatusText for the statuses a gRPC code maps to. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict',
  412: 'Precondition Failed', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

/** The same context with audit records marked as HTTP calls and metrics labelled protocol="http". */
function httpContext(context: ProxyContext, http: HttpTransport): ProxyContext {
  const { auditor, metrics } = context;
  const httpAuditor: Auditor = {
    record: (event: CallEvent) => auditor.record({ ...event, http }),
    handshakeRefused: (event) => auditor.handshakeRefused(event),
    get accepting() {
      return auditor.accepting;
    },
    flush: () => auditor.flush(),
    close: () => auditor.close(),
  };
  const httpMetrics: Metrics = {
    ...metrics,
    requestFinished: (service, method, outcome, code, seconds) => metrics.requestFinished(service, method, outcome, code, seconds, 'http'),
  };
  return { ...context, auditor: httpAuditor, metrics: httpMetrics };
}

/**
 * The grpc-js server call the stream handlers expect (the members they use), over an
 * exchange: messages in are the JSON body's objects encoded, messages out are written
 * as JSON lines.
 */
class JsonStreamCall extends EventEmitter {
  readonly metadata = new grpc.Metadata();
  private started = false;
  private ended = false;

  constructor(
    private readonly exchange: Exchange,
    private readonly json: MethodJson,
    /** The first request message (server-streaming calls read it here). */
    readonly request: Buffer,
  ) {
    super();
    for (const name of ['traceparent', 'tracestate']) {
      const value = exchange.headers[name];
      if (typeof value === 'string') this.metadata.set(name, value);
    }
    // The handlers end a call with a status by emitting 'error' (src/proxy/status.ts).
    this.on('error', (status: Status) => this.fail(status));
    exchange.onGone(() => {
      if (this.ended) return;
      this.ended = true;
      this.emit('cancelled');
    });
  }

  getPeer(): string {
    return this.exchange.peer;
  }

  getDeadline(): grpc.Deadline {
    return Infinity;
  }

  sendMetadata(): void {
    // etcd's response headers stay etcd's: the gateway writes its own.
  }

  pause(): this {
    this.exchange.body.pause();
    return this;
  }

  resume(): this {
    this.exchange.body.resume();
    return this;
  }

  private start(status = 200): void {
    if (this.started) return;
    this.started = true;
    this.exchange.startStream(status, { 'content-type': 'application/json' });
  }

  /** One response message, as `{"result":...}\n`; false asks the handler to wait for 'drain'. */
  write(message: Buffer, flushed?: () => void): boolean {
    if (this.ended) return true;
    let line: string;
    try {
      line = `${goJson({ result: this.json.decodeResponse(message) })}\n`;
    } catch {
      this.fail({ code: 13, details: 'etcdgate: a response from etcd could not be read' });
      return true;
    }
    this.start();
    const more = this.exchange.write(line, flushed);
    if (!more) this.exchange.onDrain(() => this.emit('drain'));
    return more;
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.start();
    this.exchange.end();
  }

  private fail(status: Status): void {
    if (this.ended) return;
    this.ended = true;
    const httpCode = httpStatusOf(status.code);
    this.start(httpCode);
    this.exchange.write(`${goJson({ error: { grpc_code: status.code, http_code: httpCode, message: status.details, http_status: STATUS_TEXT[httpCode] ?? '' } })}\n`);
    this.exchange.end();
  }
}

/** Feeds the body's JSON objects to the call as request messages; the body's end half-closes it. */
function relayBody(exchange: Exchange, json: MethodJson, call: JsonStreamCall, rest: string): void {
  let pending = '';
  let closed = false;
  const take = (text: string): void => {
    if (closed) return;
    const { values, rest: unfinished } = splitJsonValues(pending + text);
    pending = unfinished;
    for (const value of values) {
      let message: Buffer;
      try {
        message = json.requestFromJson(parseJsonValue(value));
      } catch (error: unknown) {
        if (!(error instanceof JsonMappingError)) throw error;
        // etcd's gateway stops sending (half-close) at the first request it cannot decode.
        closed = true;
        exchange.body.removeAllListeners('data');
        exchange.body.resume();
        call.emit('end');
        return;
      }
      call.emit('data', message);
    }
  };
  take(rest);
  exchange.body.on('data', take);
  exchange.body.once('end', () => {
    if (closed) return;
    closed = true;
    call.emit('end');
  });
}

/**
 * Reads the body until its first complete JSON object (or its end); resolves with it,
 * the text after it, and whether the body ended; undefined if it does not come in time.
 */
function firstValue(exchange: Exchange, timeoutMs: number): Promise<{ first: string | undefined; rest: string; ended: boolean } | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => {
      exchange.body.removeListener('data', onData);
      exchange.body.removeListener('end', onEnd);
      resolve(undefined);
    }, timeoutMs);
    const onData = (chunk: string): void => {
      text += chunk;
      const { values } = splitJsonValues(text);
      const first = values[0];
      if (first === undefined) return;
      clearTimeout(timer);
      exchange.body.removeListener('data', onData);
      exchange.body.removeListener('end', onEnd);
      exchange.body.pause();
      resolve({ first, rest: text.slice(text.indexOf(first) + first.length), ended: false });
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      exchange.body.removeListener('data', onData);
      resolve({ first: text.trim() === '' ? undefined : text, rest: '', ended: true });
    };
    exchange.body.setEncoding('utf8');
    exchange.body.on('data', onData);
    exchange.body.once('end', onEnd);
  });
}

/** How a streaming call is served: its audit transport, the wait for its first request, the record of a refusal before the call. */
export interface StreamOptions {
  readonly http: HttpTransport;
  readonly firstMessageTimeoutMs: number;
  readonly onRefused: (status: Status) => void;
}

/** Serves a streaming RPC over the exchange. */
export async function serveStream(context: ProxyContext, spec: MethodSpec, json: MethodJson, exchange: Exchange, options: StreamOptions): Promise<void> {
  const { http, onRefused } = options;
  const head = await firstValue(exchange, options.firstMessageTimeoutMs);
  if (head === undefined) {
    // The rest of the body is not read: the connection cannot carry another request.
    sendStatus(exchange, FIRST_MESSAGE_TOO_SLOW, true);
    onRefused(FIRST_MESSAGE_TOO_SLOW);
    return;
  }
  if (exchange.gone) return;
  const { first, rest, ended } = head;
  let request: Buffer | undefined;
  if (first !== undefined) {
    try {
      request = json.requestFromJson(parseJsonValue(first));
    } catch (error: unknown) {
      if (!(error instanceof JsonMappingError)) throw error;
      // etcd's gateway answers this one with code UNKNOWN (its decode error is no gRPC status).
      const status = { code: 2, details: error.message };
      sendStatus(exchange, status);
      onRefused(status);
      return;
    }
  }
  const perCall = httpContext(context, http);
  if (spec.shape === 'serverStream') {
    const call = new JsonStreamCall(exchange, json, request ?? json.requestFromJson(null));
    exchange.body.resume();
    // JsonStreamCall has every member the handlers use (see the class), not grpc-js's whole type.
    serverStreamHandler(perCall, spec)(call as unknown as grpc.ServerWritableStream<Buffer, Buffer>);
    return;
  }
  const call = new JsonStreamCall(exchange, json, request ?? Buffer.alloc(0));
  const handler = spec.path === WATCH ? watchHandler(perCall, spec) : spec.path === KEEPALIVE ? leaseKeepAliveHandler(perCall, spec) : undefined;
  if (handler === undefined) throw new Error(`no JSON stream handler for ${spec.path}`);
  handler(call as unknown as grpc.ServerDuplexStream<Buffer, Buffer>);
  if (request !== undefined) call.emit('data', request);
  if (ended) {
    call.emit('end');
    return;
  }
  relayBody(exchange, json, call, rest);
  exchange.body.resume();
}
