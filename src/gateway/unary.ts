/**
 * A unary JSON call handed to the same pipeline as a gRPC unary call
 * (src/proxy/unary.ts serveUnary): the JSON body, already turned into the protobuf
 * request, plays the request message; `respond` turns etcd's response into etcd's
 * gateway JSON and `fail` turns a status into etcd's gateway error. Identity, limits,
 * authorization, cache, forwarding and audit are the pipeline's, unchanged.
 *
 * Only trace context is taken from the HTTP headers: `Authorization` and `token` (how
 * etcd's gateway passes a password user's token) never reach the pipeline, so the
 * caller is always the certificate's identity.
 */
import type * as http2 from 'node:http2';
import type { HttpTransport } from '../audit/types.js';
import type { MethodJson } from './json.js';
import { CANCELLED_BY_CLIENT, type UnaryCallLimits } from '../proxy/unary-call.js';
import type { UnaryCallPort } from '../proxy/unary.js';
import { INTERNAL_ERROR, type Status } from '../proxy/status.js';
import type { Exchange } from './exchange.js';
import { sendJson, sendStatus } from './answers.js';

/** Request headers the pipeline may see (trace context only). */
const TRACE_HEADERS = ['traceparent', 'tracestate'] as const;

/** The gRPC-call role of one JSON request (see UnaryCallPort). */
export class JsonUnaryCall implements UnaryCallPort {
  readonly headers: http2.IncomingHttpHeaders;
  readonly deadline = undefined;
  readonly framedRequest = undefined;
  readonly peer: string;
  readonly http: HttpTransport;
  private ended: Status | 'ok' | undefined;
  private cancelListener: (() => void) | undefined;

  constructor(
    private readonly exchange: Exchange,
    private readonly json: MethodJson,
    /** The request message, encoded from the body by json.requestFromJson. */
    readonly request: Buffer,
    private readonly limits: UnaryCallLimits,
  ) {
    this.peer = exchange.peer;
    this.http = { version: exchange.version, path: exchange.target.split('?')[0]?.slice(0, 256) ?? '' };
    const headers: http2.IncomingHttpHeaders = {};
    for (const name of TRACE_HEADERS) {
      const value = exchange.headers[name];
      if (typeof value === 'string') headers[name] = value;
    }
    this.headers = headers;
    exchange.onGone(() => {
      if (this.ended !== undefined) return;
      this.ended = CANCELLED_BY_CLIENT;
      this.cancelListener?.();
    });
  }

  onCancel(listener: () => void): void {
    this.cancelListener = listener;
  }

  /** Answers 200 with the response as JSON; returns the status the client got (undefined for OK). */
  respond(message: Buffer): Status | undefined {
    if (this.ended !== undefined) return this.ended === 'ok' ? undefined : this.ended;
    const max = this.limits.maxSendBytes;
    if (max >= 0 && message.length > max) return this.fail({ code: 8, details: `etcdgate: response larger than server.maxSendBytes (${message.length} vs ${max})` });
    let body: string;
    try {
      body = this.json.responseToJson(message);
    } catch {
      // etcd answered bytes that protos/ cannot read: a bug or a newer etcd, not the client's doing.
      return this.fail(INTERNAL_ERROR);
    }
    this.ended = 'ok';
    sendJson(this.exchange, 200, body);
    return undefined;
  }

  /** Answers with etcd's gateway error for `status`; returns the status the client got. */
  fail(status: Status): Status {
    if (this.ended !== undefined) return this.ended === 'ok' ? status : this.ended;
    this.ended = status;
    sendStatus(this.exchange, status);
    return status;
  }
}
