/**
 * A JSON call, as the proxy's flows see every call (src/proxy/call.ts RpcCall): the
 * request body's JSON, already turned into protobuf request messages, goes in; etcd's
 * response messages come out as etcd's gateway writes them. So a JSON call takes the
 * very same gate and flow as a gRPC call (identity, policy, limits, cache, encryption,
 * forwarding, audit), and only this file knows it came as JSON.
 *
 * Unary: the one response message is answered 200 with its JSON, a failed status with
 * etcd's gateway error (HTTP status of its code, `{"error","message","code"}`).
 * Streaming (grpc-gateway v1's form): each response message is written as
 * `{"result":{...}}` and a newline as it arrives (chunked on HTTP/1.1), 200 once the
 * first is written; a status that ends the call is written as `{"error":{"grpc_code",
 * "http_code","message","http_status"}}`, with the HTTP status of its code if nothing
 * was written yet.
 *
 * Only trace context is taken from the HTTP headers: `Authorization` and `token` (how
 * etcd's gateway passes a password user's token) never reach the flow, so the caller
 * is always the certificate's identity.
 */
import type { HttpTransport } from '../audit/types.js';
import type { RpcCall, RpcHandler } from '../proxy/call.js';
import { CANCELLED_BY_CLIENT, INTERNAL_ERROR, type Status } from '../proxy/status.js';
import { MessageReader, type MessageSink } from '../transport/grpc/message-reader.js';
import { httpStatusOf, sendJson, sendStatus } from './answers.js';
import type { Exchange } from './exchange.js';
import { goJson, type MethodJson } from './json.js';

/** Request headers a flow may see (trace context only). */
const TRACE_HEADERS: ReadonlySet<string> = new Set(['traceparent', 'tracestate']);

/** Go's http.StatusText for the statuses a gRPC code maps to. */
const STATUS_TEXT: Readonly<Record<number, string>> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 408: 'Request Timeout', 409: 'Conflict',
  412: 'Precondition Failed', 429: 'Too Many Requests', 500: 'Internal Server Error', 501: 'Not Implemented', 503: 'Service Unavailable', 504: 'Gateway Timeout',
};

export class JsonCall implements RpcCall, MessageSink {
  readonly deadline = undefined;
  ended: Status | undefined;
  private handler: RpcHandler | undefined;
  /** Input that arrived before the flow attached. */
  private readonly early: Buffer[] = [];
  private halfClosedEarly = false;
  /** Unary: the response message. */
  private response: Buffer | undefined;
  /** etcd's framed bytes, cut into messages (a relay hands over pieces of any size). */
  private readonly reader = new MessageReader(-1);
  private answerStarted = false;
  private unflushed = 0;

  constructor(
    private readonly exchange: Exchange,
    private readonly json: MethodJson,
    /** The gRPC method path the route maps to. */
    readonly path: string,
    private readonly streaming: boolean,
    readonly http: HttpTransport,
  ) {
    exchange.onGone(() => {
      if (this.ended !== undefined) return;
      this.ended = CANCELLED_BY_CLIENT;
      this.handler?.onCancel(this, 'client-reset', CANCELLED_BY_CLIENT);
    });
  }

  get queuedBytes(): number {
    return this.unflushed;
  }

  header(name: string): string | undefined {
    if (!TRACE_HEADERS.has(name)) return undefined;
    const value = this.exchange.headers[name];
    return typeof value === 'string' ? value : undefined;
  }

  attach(handler: RpcHandler): void {
    this.handler = handler;
    for (const message of this.early.splice(0)) {
      if (this.ended !== undefined) return;
      handler.onMessage(this, message, undefined);
    }
    if (this.halfClosedEarly && this.ended === undefined) handler.onHalfClose(this);
  }

  /** One request message from the body (gateway side). */
  feed(message: Buffer): void {
    if (this.ended !== undefined) return;
    if (this.handler === undefined) this.early.push(message);
    else this.handler.onMessage(this, message, undefined);
  }

  /** The body has ended: no more request messages (gateway side). */
  halfClose(): void {
    if (this.ended !== undefined) return;
    if (this.handler === undefined) this.halfClosedEarly = true;
    else this.handler.onHalfClose(this);
  }

  pause(): void {
    this.exchange.body.pause();
  }

  resume(): void {
    this.exchange.body.resume();
  }

  sendHeaders(): void {
    // etcd's response headers stay etcd's: the gateway writes its own.
  }

  sendMessageParts(parts: readonly Buffer[], length: number): boolean {
    return this.sendMessage(Buffer.concat(parts, length));
  }

  sendMessage(message: Buffer): boolean {
    if (this.ended !== undefined) return true;
    if (!this.streaming) {
      this.response = Buffer.from(message);
      return true;
    }
    let line: string;
    try {
      line = `${goJson({ result: this.json.decodeResponse(message) })}\n`;
    } catch {
      this.end({ code: 13, details: 'etcdgate: a response from etcd could not be read' });
      return true;
    }
    this.startAnswer(200);
    const bytes = Buffer.byteLength(line);
    this.unflushed += bytes;
    const more = this.exchange.write(line, () => {
      this.unflushed -= bytes;
    });
    if (!more) this.exchange.onDrain(() => this.handler?.onDrain(this));
    return more;
  }

  sendFramed(framed: Buffer): boolean {
    this.sinkMore = true;
    this.reader.push(framed, this);
    return this.sinkMore;
  }

  /** Whether every message of the last sendFramed was taken without asking to wait. */
  private sinkMore = true;

  /** Each message cut out of etcd's framed bytes. */
  onMessage(_compressed: boolean, message: Buffer): void {
    if (!this.sendMessage(message)) this.sinkMore = false;
  }

  end(status: Status): Status {
    if (this.ended !== undefined) return this.ended;
    this.ended = status;
    const exchange = this.exchange;
    if (exchange.gone) return CANCELLED_BY_CLIENT;
    if (!this.streaming) {
      if (status.code !== 0) {
        sendStatus(exchange, status);
        return status;
      }
      let body: string;
      try {
        body = this.json.responseToJson(this.response ?? Buffer.alloc(0));
      } catch {
        // etcd answered bytes that protos/ cannot read: a bug or a newer etcd, not the client's doing.
        sendStatus(exchange, INTERNAL_ERROR);
        return INTERNAL_ERROR;
      }
      sendJson(exchange, 200, body);
      return status;
    }
    if (status.code === 0) {
      this.startAnswer(200);
      exchange.end();
      return status;
    }
    const httpCode = httpStatusOf(status.code);
    this.startAnswer(httpCode);
    exchange.write(`${goJson({ error: { grpc_code: status.code, http_code: httpCode, message: status.details, http_status: STATUS_TEXT[httpCode] ?? '' } })}\n`);
    exchange.end();
    return status;
  }

  private startAnswer(status: number): void {
    if (this.answerStarted) return;
    this.answerStarted = true;
    this.exchange.startStream(status, { 'content-type': 'application/json' });
  }
}
