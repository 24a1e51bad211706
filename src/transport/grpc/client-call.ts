/**
 * One gRPC call on a client-side HTTP/2 stream (etcdgate to etcd): the request headers,
 * the request messages, and what comes back, as messages or, for a pass-through, as the
 * framed bytes themselves. Every way a call can end becomes one Status, with `notSent`
 * saying whether the request cannot have reached the server (refused stream, a GOAWAY
 * below it, a connection that never became ready): only such calls may be repeated
 * elsewhere when they are writes.
 *
 * Backpressure: what arrives is consumed (the stream's window reopened) as the handler
 * takes it; `pause` stops that, so a slow reader downstream slows etcd down instead of
 * filling memory here.
 */
import { encodeStateless } from '../hpack/index.js';
import { CANCEL, ENHANCE_YOUR_CALM, INADEQUATE_SECURITY, REFUSED_STREAM, errorName } from '../http2/constants.js';
import type { Http2Connection } from '../http2/connection.js';
import type { Http2Stream, ResetReason, StreamHandler } from '../http2/stream.js';
import { MessageReader, messagePrefix, type MessageSink } from './message-reader.js';
import { customMetadata } from './metadata.js';
import { Code, decodeGrpcMessage, type Status } from './status.js';
import { formatTimeout } from './timeout.js';

/**
 * How a call ended: its status, whether the request cannot have reached the server, and
 * whether the status is the server's own answer (its grpc-status arrived). A call that
 * is neither notSent nor answered ended without the server's answer: it may have been
 * carried out.
 */
export interface CallOutcome extends Status {
  readonly notSent: boolean;
  readonly answered?: true;
}

export interface ClientCallHandler {
  /** Response headers (not sent for a trailers-only answer); `metadata` is the application's part. */
  onHeaders(call: GrpcClientCall, metadata: string[]): void;
  /** A complete response message (message mode), or a DATA payload of framed messages (raw mode). */
  onMessage(call: GrpcClientCall, message: Buffer, framed: Buffer | undefined): void;
  /** The call ended; nothing more will arrive. */
  onEnd(call: GrpcClientCall, outcome: CallOutcome): void;
  /** A send returned false and the request queue is short again: more may be sent. */
  onDrain?(call: GrpcClientCall): void;
}

/** Everything about a request but its messages. */
export interface CallRequest {
  /** Precomputed request header block for the method (requestHeaderBlock). */
  readonly headerBlock: Buffer;
  /** Absolute deadline, ms since the epoch. */
  readonly deadline?: number | undefined;
  /** Further request metadata (flat name, value list), e.g. the allowlisted client headers. */
  readonly metadata?: readonly string[] | undefined;
  /** Largest response message accepted; -1 for none. */
  readonly maxRecvBytes: number;
  /** 'raw': onMessage gets DATA payloads of framed messages as they arrive (a pass-through). */
  readonly mode?: 'messages' | 'raw';
}

/**
 * The request header block of a method: stateless HPACK, so it is computed once per
 * (authority, path) and sent on any connection.
 */
export function requestHeaderBlock(authority: string, path: string, userAgent: string): Buffer {
  return encodeStateless([
    ':method', 'POST',
    ':scheme', 'https',
    ':path', path,
    ':authority', authority,
    'content-type', 'application/grpc',
    'te', 'trailers',
    'user-agent', userAgent,
  ]);
}

/** The status gRPC assigns to an HTTP status other than 200 (gRPC's "HTTP to gRPC status code mapping"). */
function httpStatusCode(status: number): number {
  switch (status) {
    case 400:
      return Code.INTERNAL;
    case 401:
      return Code.UNAUTHENTICATED;
    case 403:
      return Code.PERMISSION_DENIED;
    case 404:
      return Code.UNIMPLEMENTED;
    case 429:
    case 502:
    case 503:
    case 504:
      return Code.UNAVAILABLE;
    default:
      return Code.UNKNOWN;
  }
}

/** The status of a stream the server reset without a grpc-status. */
function resetOutcome(code: number): CallOutcome {
  switch (code) {
    case REFUSED_STREAM:
      return { code: Code.UNAVAILABLE, details: 'etcdgate: etcd refused the stream', notSent: true };
    case CANCEL:
      return { code: Code.CANCELLED, details: 'etcdgate: call cancelled', notSent: false };
    case ENHANCE_YOUR_CALM:
      return { code: Code.RESOURCE_EXHAUSTED, details: 'etcdgate: etcd reset the stream (ENHANCE_YOUR_CALM)', notSent: false };
    case INADEQUATE_SECURITY:
      return { code: Code.PERMISSION_DENIED, details: 'etcdgate: etcd reset the stream (INADEQUATE_SECURITY)', notSent: false };
    default:
      return { code: Code.INTERNAL, details: `etcdgate: etcd reset the stream (${errorName(code)})`, notSent: false };
  }
}

/** The longest delay a Node timer takes (2^31 - 1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

export class GrpcClientCall implements StreamHandler, MessageSink {
  readonly stream: Http2Stream;
  /** The outcome, once the call has ended. */
  ended: CallOutcome | undefined;
  private readonly reader: MessageReader;
  private readonly raw: boolean;
  private status: Status | undefined;
  private httpStatus = 0;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private paused = false;
  private unconsumed = 0;

  /** Opens the call's stream on `connection`; undefined when the connection takes no new stream. */
  static start(connection: Http2Connection, request: CallRequest, handler: ClientCallHandler, endStream = false): GrpcClientCall | undefined {
    const extra: string[] = [];
    if (request.deadline !== undefined) extra.push('grpc-timeout', formatTimeout(request.deadline - Date.now()));
    if (request.metadata !== undefined) extra.push(...request.metadata);
    const block = extra.length === 0 ? request.headerBlock : Buffer.concat([request.headerBlock, encodeStateless(extra)]);
    const stream = connection.openStream(block, endStream);
    if (stream === undefined) return undefined;
    return new GrpcClientCall(stream, request, handler);
  }

  private constructor(
    stream: Http2Stream,
    request: CallRequest,
    private readonly handler: ClientCallHandler,
  ) {
    this.stream = stream;
    stream.handler = this;
    this.raw = request.mode === 'raw';
    this.reader = new MessageReader(request.maxRecvBytes);
    if (request.deadline !== undefined) {
      const ms = Math.max(0, request.deadline - Date.now());
      if (ms <= MAX_TIMER_MS) {
        this.deadlineTimer = setTimeout(() => this.fail({ code: Code.DEADLINE_EXCEEDED, details: 'Deadline exceeded', notSent: false }), ms);
        this.deadlineTimer.unref();
      }
    }
  }

  /** Sends one message (framed here). False once the stream's queue is long. */
  sendMessage(message: Buffer, end = false): boolean {
    this.stream.sendData(messagePrefix(message.length));
    return this.stream.sendData(message, end);
  }

  /** Sends bytes that are already framed messages, unchanged. */
  sendFramed(framed: Buffer, end = false): boolean {
    return this.stream.sendData(framed, end);
  }

  /** No more request messages (half-close). */
  end(): void {
    this.stream.sendData(Buffer.alloc(0), true);
  }

  /** Abandons the call: RST_STREAM(CANCEL); the handler hears CANCELLED. */
  cancel(details = 'etcdgate: call cancelled'): void {
    this.fail({ code: Code.CANCELLED, details, notSent: false });
  }

  /** Stops reopening the window: etcd stops sending once it is used up. */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    const bytes = this.unconsumed;
    this.unconsumed = 0;
    if (bytes > 0) this.stream.consume(bytes);
  }

  /** Raw mode: the handler is done with `bytes` it was given (reopens the window unless paused). */
  consume(bytes: number): void {
    if (this.paused) this.unconsumed += bytes;
    else this.stream.consume(bytes);
  }

  // ------------------------------------------------------------ receiving

  onHeaders(_stream: Http2Stream, fields: string[], endStream: boolean): void {
    if (this.ended !== undefined) return;
    if (this.httpStatus === 0) {
      this.httpStatus = Number(fields[1]);
      if (this.httpStatus === 200) {
        const contentType = fieldOf(fields, 'content-type');
        if (contentType === undefined || !contentType.startsWith('application/grpc')) {
          this.fail({ code: Code.UNKNOWN, details: `etcdgate: etcd answered with content-type ${(contentType ?? 'none').slice(0, 64)}`, notSent: false });
          return;
        }
      }
    }
    const grpcStatus = fieldOf(fields, 'grpc-status');
    if (grpcStatus !== undefined) {
      const code = Number(grpcStatus);
      const metadata = customMetadata(fields);
      this.status = {
        code: Number.isInteger(code) && code >= 0 ? code : Code.UNKNOWN,
        details: decodeGrpcMessage(fieldOf(fields, 'grpc-message') ?? ''),
        ...(metadata.length === 0 ? {} : { metadata }),
      };
    } else if (!endStream && this.httpStatus === 200) {
      this.handler.onHeaders(this, customMetadata(fields));
    }
    if (endStream) this.complete();
  }

  onData(_stream: Http2Stream, data: Buffer, endStream: boolean): void {
    if (this.ended !== undefined) return;
    if (this.httpStatus !== 200) {
      this.stream.consume(data.length);
      if (endStream) this.complete();
      return;
    }
    if (this.raw) {
      if (data.length > 0) this.handler.onMessage(this, data, data);
    } else if (data.length > 0) {
      const error = this.reader.push(data, this);
      if (error !== undefined) {
        const details = error.kind === 'too-large' ? `etcdgate: etcd's response is larger than upstream.maxRecvBytes (${error.declared} bytes)` : 'etcdgate: etcd sent a compressed response, which etcdgate did not ask for';
        this.fail({ code: error.kind === 'too-large' ? Code.RESOURCE_EXHAUSTED : Code.INTERNAL, details, notSent: false });
        return;
      }
      this.consume(data.length);
    }
    if (endStream) this.complete();
  }

  onMessage(compressed: boolean, message: Buffer, framed: Buffer | undefined): void {
    if (this.ended !== undefined) return;
    if (compressed) {
      this.fail({ code: Code.INTERNAL, details: 'etcdgate: etcd sent a compressed response, which etcdgate did not ask for', notSent: false });
      return;
    }
    this.handler.onMessage(this, message, framed);
  }

  onReset(_stream: Http2Stream, code: number, reason: ResetReason): void {
    if (this.ended !== undefined) return;
    let outcome: CallOutcome;
    if (reason === 'refused') outcome = { code: Code.UNAVAILABLE, details: 'etcdgate: etcd went away before taking the call', notSent: true };
    else if (reason === 'connection-lost') {
      const ready = this.stream.connection.ready;
      outcome = { code: Code.UNAVAILABLE, details: ready ? 'etcdgate: connection to etcd lost' : 'etcdgate: etcd endpoint not reachable', notSent: !ready };
    } else if (reason === 'local-reset') outcome = { code: Code.INTERNAL, details: `etcdgate: etcd's stream broke the protocol (${errorName(code)})`, notSent: false };
    else outcome = resetOutcome(code);
    this.settle(outcome);
  }

  onDrain(): void {
    if (this.ended === undefined) this.handler.onDrain?.(this);
  }

  private complete(): void {
    if (this.ended !== undefined) return;
    if (this.httpStatus !== 200) {
      this.settle({ code: httpStatusCode(this.httpStatus), details: `etcdgate: etcd answered HTTP ${this.httpStatus}`, notSent: false });
      return;
    }
    if (this.reader.reading) {
      this.settle({ code: Code.INTERNAL, details: 'etcdgate: etcd sent a malformed response frame', notSent: false });
      return;
    }
    if (this.status === undefined) {
      this.settle({ code: Code.INTERNAL, details: 'etcdgate: etcd ended the call without a status', notSent: false });
      return;
    }
    this.settle({ ...this.status, notSent: false, answered: true });
  }

  /** Ends the call from this side: the stream is reset and the handler told. */
  private fail(outcome: CallOutcome): void {
    if (this.ended !== undefined) return;
    this.ended = outcome;
    this.clear();
    this.stream.reset(CANCEL);
    this.handler.onEnd(this, outcome);
  }

  private settle(outcome: CallOutcome): void {
    if (this.ended !== undefined) return;
    this.ended = outcome;
    this.clear();
    this.handler.onEnd(this, outcome);
  }

  private clear(): void {
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
  }
}

function fieldOf(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}
