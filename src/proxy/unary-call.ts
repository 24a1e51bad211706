/**
 * One unary gRPC call, read off its HTTP/2 stream and answered on it without grpc-js.
 *
 * grpc-js wraps every call in metadata objects, an interceptor chain, a read queue and
 * a writable. Measured side by side, a bare grpc-js pass-through costs about twice the
 * CPU per call of a bare node:http2 one (docs/performance.md). Unary calls are most of
 * etcd's traffic, so etcdgate reads them itself: the 5-byte gRPC frame, `grpc-timeout`
 * and `grpc-encoding`, and it writes the response frame and the status as HTTP/2
 * headers and trailers. Streaming methods, unknown methods and non-gRPC requests stay
 * with grpc-js (src/proxy/stream-router.ts).
 *
 * A call ends exactly once: by the handler's answer, by its deadline, or by the client
 * resetting the stream. Whatever ends it, `respond` and `fail` report the status the
 * client actually got, so the audit record says what happened on the wire.
 */
import type * as http2 from 'node:http2';
import { gunzip, inflate } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { frameMessage } from '../grpc-frame.js';
import type { Status } from './status.js';

/** Size limits of server.maxRecvBytes / server.maxSendBytes; -1 means none. */
export interface UnaryCallLimits {
  readonly maxRecvBytes: number;
  readonly maxSendBytes: number;
}

/**
 * The answer's protocol headers: the ones gRPC requires, and the request encodings
 * accepted (see decompress). Responses are never compressed, so grpc-encoding is left
 * out. Node copies this object on respond, so it is shared.
 */
const OK_HEADERS: http2.OutgoingHttpHeaders = {
  ':status': 200,
  'content-type': 'application/grpc+proto',
  'grpc-accept-encoding': 'identity,deflate,gzip',
};
const OK_TRAILERS: http2.OutgoingHttpHeaders = { 'grpc-status': '0' };
/** No Date header: gRPC clients ignore it (sendDate is a Node option its types omit). */
const RESPOND_WITH_TRAILERS = { waitForTrailers: true, sendDate: false } as const;
const RESPOND_AND_END = { endStream: true, sendDate: false } as const;

/** A client that resets its stream gets nothing; this is what its audit record says. */
export const CANCELLED_BY_CLIENT: Status = { code: grpc.status.CANCELLED, details: 'etcdgate: call cancelled by the client' };
/** Marker for a call answered OK (kept apart from every refusal Status). */
const OK: Status = { code: grpc.status.OK, details: 'OK' };
const DEADLINE_EXCEEDED: Status = { code: grpc.status.DEADLINE_EXCEEDED, details: 'Deadline exceeded' };

/** grpc-timeout: up to 8 digits and a unit (gRPC over HTTP/2, "Timeout"). */
const TIMEOUT = /^(\d{1,8})([HMSmun])$/u;
const UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1000, m: 1, u: 0.001, n: 0.000_001 };

const EMPTY = Buffer.alloc(0);

/** Printable ASCII but '%': what grpc-message may carry unencoded. */
const PLAIN = /^[\x20-\x24\x26-\x7e]*$/u;

/** grpc-message on the wire: UTF-8, with every byte outside printable ASCII, and '%', percent-encoded. */
export function grpcMessage(details: string): string {
  if (PLAIN.test(details)) return details;
  let encoded = '';
  for (const byte of Buffer.from(details, 'utf8')) {
    encoded += byte >= 0x20 && byte <= 0x7e && byte !== 0x25 ? String.fromCharCode(byte) : `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return encoded;
}

function text(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** The Status of a message refused while being read (never forwarded). */
function refusal(code: grpc.status, details: string): Status {
  return { code, details: `etcdgate: ${details}` };
}

/** Where a call goes once its message is read, or once it ended without one. */
export type UnaryCallHandlers = {
  /** The request message is complete: decide and answer with `call.respond` or `call.fail`. */
  readonly onMessage: (call: UnaryCall) => void;
  /**
   * The call ended before its message reached onMessage (already answered, if the client
   * is still there); for the audit. `why`: the message could not be read, the deadline
   * passed, or the client reset the stream.
   */
  readonly onRefused: (call: UnaryCall, status: Status, why: EndedWhileReading) => void;
};

/** Why a call ended while its message was still being read. */
export type EndedWhileReading = 'unreadable' | 'deadline' | 'cancelled';

/** The longest delay a Node timer takes (2^31 - 1 ms, ~24.8 days); longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** A unary call on a raw HTTP/2 stream; reading starts at construction (see acceptUnaryCall). */
export class UnaryCall {
  /** "address:port" of the client's connection (the key of the verified-connections map). */
  readonly peer: string;
  /** Monotonic clock when the stream arrived, ns. */
  readonly startNs = process.hrtime.bigint();
  /** Absolute deadline from grpc-timeout, ms since the epoch; undefined when the client set none. */
  readonly deadline: number | undefined;
  /** The request message (after decompression), once onMessage is called. */
  request: Buffer = EMPTY;
  /** The request as the client framed it, when it came uncompressed: forwarded as is. */
  framedRequest: Buffer | undefined;
  /** The status the client got, once the call has ended; undefined while it is open. */
  private ended: Status | undefined;
  private timer: NodeJS.Timeout | undefined;
  private cancelListener: (() => void) | undefined;
  private chunks: Buffer[] = [];
  private received = 0;
  /** Declared length of the first message, once its prefix has arrived; -1 before. */
  private declared = -1;
  /** Whether the message has been handed to onMessage (the handler then records the call). */
  private delivered = false;

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
    private readonly limits: UnaryCallLimits,
    private readonly handlers: UnaryCallHandlers,
  ) {
    const socket = stream.session?.socket;
    this.peer = `${socket?.remoteAddress ?? ''}:${socket?.remotePort ?? 0}`;
    // Errors on the stream always come with 'close', which is where they are handled.
    stream.on('error', ignore);
    stream.on('close', () => this.onClose());

    const timeout = text(headers['grpc-timeout']);
    let deadline: number | undefined;
    if (timeout !== undefined) {
      const match = TIMEOUT.exec(timeout);
      if (match === null) {
        this.deadline = undefined;
        this.refuse(refusal(grpc.status.INTERNAL, `invalid grpc-timeout "${timeout.slice(0, 32)}"`));
        return;
      }
      // Whole milliseconds, at least one: a deadline below 1 ms still gets its try.
      const ms = Math.max(1, Math.ceil(Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? 1)));
      deadline = Date.now() + ms;
      // A deadline past what a timer can hold is as good as none here; etcd still gets it.
      if (ms <= MAX_TIMER_MS) this.timer = setTimeout(() => this.expire(), ms);
    }
    this.deadline = deadline;
    stream.on('data', (chunk: Buffer) => this.onData(chunk));
    stream.on('end', () => this.onEnd());
  }

  /** Whether the call has ended (answered, deadline passed, or reset by the client). */
  get isEnded(): boolean {
    return this.ended !== undefined;
  }

  /** Registers what to do if the call ends before the handler answers (deadline or client reset). */
  onCancel(listener: () => void): void {
    this.cancelListener = listener;
  }

  /**
   * Answers with one message (`framed`, when given, is the same message already framed,
   * as etcd sent it) and status OK. Returns the status the client got: undefined for OK.
   */
  respond(message: Buffer, framed?: Buffer, headers?: grpc.Metadata, trailers?: grpc.Metadata): Status | undefined {
    if (this.ended !== undefined) return this.endedStatus();
    const max = this.limits.maxSendBytes;
    if (max >= 0 && message.length > max) return this.fail({ code: grpc.status.RESOURCE_EXHAUSTED, details: `etcdgate: response larger than server.maxSendBytes (${message.length} vs ${max})` });
    if (!this.end(OK)) return CANCELLED_BY_CLIENT;
    const stream = this.stream;
    stream.respond(headers === undefined ? OK_HEADERS : { ...OK_HEADERS, ...headers.toHttp2Headers() }, RESPOND_WITH_TRAILERS);
    stream.once('wantTrailers', () => stream.sendTrailers(trailers === undefined ? OK_TRAILERS : { ...OK_TRAILERS, ...trailers.toHttp2Headers() }));
    stream.end(framed ?? frameMessage(message));
    return undefined;
  }

  /** Ends the call with a status (a trailers-only answer); returns the status the client got. */
  fail(status: Status): Status {
    if (this.ended !== undefined) return this.endedStatus() ?? status;
    if (!this.end(status)) return CANCELLED_BY_CLIENT;
    this.stream.respond(
      { ...OK_HEADERS, 'grpc-status': String(status.code), 'grpc-message': grpcMessage(status.details), ...status.metadata?.toHttp2Headers() },
      RESPOND_AND_END,
    );
    return status;
  }

  private onData(chunk: Buffer): void {
    if (this.ended !== undefined) return;
    this.chunks.push(chunk);
    this.received += chunk.length;
    if (this.declared < 0 && this.received >= 5) {
      const head = this.chunks.length === 1 ? chunk : Buffer.concat(this.chunks, this.received);
      this.declared = head.readUInt32BE(1);
      const max = this.limits.maxRecvBytes;
      if (max >= 0 && this.declared > max) {
        this.refuse(refusal(grpc.status.RESOURCE_EXHAUSTED, `request message larger than server.maxRecvBytes (${this.declared} vs ${max})`));
        return;
      }
    }
    // Anything after the first message is a second one: a unary call carries exactly one.
    if (this.declared >= 0 && this.received > 5 + this.declared) {
      this.refuse(refusal(grpc.status.UNIMPLEMENTED, 'a unary call takes exactly one request message'));
    }
  }

  private onEnd(): void {
    if (this.ended !== undefined) return;
    if (this.declared < 0 || this.received < 5 + this.declared) {
      this.refuse(refusal(grpc.status.UNIMPLEMENTED, 'the call ended without a complete request message'));
      return;
    }
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks, this.received);
    this.chunks = [];
    const message = body.subarray(5);
    if (body[0] === 0) {
      this.request = message;
      this.framedRequest = body;
      this.deliver();
      return;
    }
    this.decompress(message);
  }

  /** A compressed request (flag 1), in the encoding the client named; limits apply to the result. */
  private decompress(message: Buffer): void {
    const encoding = text(this.headers['grpc-encoding']) ?? 'identity';
    if (encoding === 'identity') {
      // The compressed flag without a compression is a protocol error, as grpc-go treats it.
      this.refuse(refusal(grpc.status.INTERNAL, 'request flagged compressed without a grpc-encoding'));
      return;
    }
    const method = encoding === 'gzip' ? gunzip : encoding === 'deflate' ? inflate : undefined;
    if (method === undefined) {
      this.refuse(refusal(grpc.status.UNIMPLEMENTED, `request compressed with unsupported encoding "${encoding.slice(0, 32)}"`));
      return;
    }
    const max = this.limits.maxRecvBytes;
    method(message, max >= 0 ? { maxOutputLength: Math.max(max, 1) } : {}, (error, result) => {
      if (this.ended !== undefined) return;
      if (error === null) {
        this.request = result;
        this.deliver();
      } else if ('code' in error && error.code === 'ERR_BUFFER_TOO_LARGE') {
        this.refuse(refusal(grpc.status.RESOURCE_EXHAUSTED, `request message decompresses to more than server.maxRecvBytes (${max})`));
      } else {
        this.refuse(refusal(grpc.status.INTERNAL, `request message could not be decompressed (${encoding})`));
      }
    });
  }

  /** Refused while reading: answer, stop reading, and tell the handlers for the audit. */
  private refuse(status: Status): void {
    this.chunks = [];
    const sent = this.fail(status);
    // Whatever the client still sends is read and dropped, so its stream can close.
    this.stream.on('data', ignore);
    this.handlers.onRefused(this, sent, 'unreadable');
  }

  private deliver(): void {
    this.delivered = true;
    this.handlers.onMessage(this);
  }

  private expire(): void {
    this.timer = undefined;
    if (this.ended !== undefined) return;
    const sent = this.fail(DEADLINE_EXCEEDED);
    if (this.delivered) this.cancelListener?.();
    else this.handlers.onRefused(this, sent, 'deadline');
  }

  private onClose(): void {
    if (this.ended !== undefined) return;
    this.ended = CANCELLED_BY_CLIENT;
    this.clear();
    if (this.delivered) this.cancelListener?.();
    else this.handlers.onRefused(this, CANCELLED_BY_CLIENT, 'cancelled');
  }

  /** Ends the call with `status`; false if the client's stream is already gone (then it ends as cancelled). */
  private end(status: Status): boolean {
    this.clear();
    if (this.stream.destroyed || this.stream.closed) {
      this.ended = CANCELLED_BY_CLIENT;
      return false;
    }
    this.ended = status;
    return true;
  }

  private clear(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }

  private endedStatus(): Status | undefined {
    return this.ended === OK ? undefined : this.ended;
  }
}

function ignore(): void {
  // Stream errors are handled on 'close'; data after a refusal is dropped.
}

/** Takes a unary call's stream: reads its message, then hands it to `handlers`. */
export function acceptUnaryCall(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, limits: UnaryCallLimits, handlers: UnaryCallHandlers): UnaryCall {
  return new UnaryCall(stream, headers, limits, handlers);
}
