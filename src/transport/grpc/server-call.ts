/**
 * One gRPC call on a server-side HTTP/2 stream: the request's metadata and deadline,
 * its messages (decompressed when the client compressed them), and the answer: response
 * headers, messages and the status trailers (gRPC over HTTP/2). The owner (the proxy)
 * sets `handler` and decides; this class only speaks the protocol.
 *
 * Bounds, whatever the client does:
 * - a message longer than `maxRecvBytes` is refused from its 5-byte prefix, before any
 *   of it is kept;
 * - a message longer than one stream window is read only once its whole declared length
 *   is reserved in the connection's and the process's budgets of held request bytes;
 *   until then the stream's window stays closed. A reservation is all of a message or
 *   nothing, so concurrent large messages cannot deadlock each other half-read;
 * - a message not complete within `readTimeoutMs` of its first byte (or of the request
 *   headers) ends the call with DEADLINE_EXCEEDED and resets the stream;
 * - a compressed message is inflated as it arrives, never beyond `maxRecvBytes` nor
 *   beyond `maxInflateRatio` times the compressed bytes seen so far, and only while the
 *   connection's and the process's inflation budgets allow; a reset stops the work.
 *
 * Once `end` has run, nothing more is delivered and the call's bytes are given back to
 * the connection window.
 */
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib';
import { encodeStateless } from '../hpack/index.js';
import { ENHANCE_YOUR_CALM, NO_ERROR } from '../http2/constants.js';
import type { Http2Stream, ResetReason, StreamHandler } from '../http2/stream.js';
import type { Budget } from '../budget.js';
import { MessageReader, messagePrefix, type MessageSink, type ReadError } from './message-reader.js';
import { customMetadata } from './metadata.js';
import { Code, encodeGrpcMessage, type Status } from './status.js';
import { parseTimeout } from './timeout.js';

/** Parts of one message queued as they are; more are joined into one buffer first. */
const MAX_QUEUED_PARTS = 32;

/** Limits of one call; -1 for no size limit. */
export interface ServerCallLimits {
  readonly maxRecvBytes: number;
  readonly maxSendBytes: number;
  /** Time a request message may take to arrive once started, ms. */
  readonly readTimeoutMs: number;
  /** Inflated bytes allowed per compressed byte (past the first 64 KiB). */
  readonly maxInflateRatio: number;
  /** Messages up to this long are read without a reservation (they fit one stream window). */
  readonly smallMessageBytes: number;
}

/** Why a call ended without the handler ending it. */
export type CancelReason = 'client-reset' | 'connection-lost' | 'deadline' | 'read-timeout' | 'unreadable';

/** What the owner of a call hears. */
export interface ServerCallHandler {
  /** One request message (decompressed); `framed` is the message as the client framed it, when it came uncompressed and contiguous. */
  onMessage(call: GrpcServerCall, message: Buffer, framed: Buffer | undefined): void;
  /** The client sent END_STREAM: no more messages. */
  onHalfClose(call: GrpcServerCall): void;
  /** The call ended without the handler: `status` is what the client got (if it is still there). */
  onCancel(call: GrpcServerCall, reason: CancelReason, status: Status): void;
  /** Queued response data went out: more may be sent. */
  onDrain(call: GrpcServerCall): void;
}

const NOBODY: ServerCallHandler = {
  onMessage: () => undefined,
  onHalfClose: () => undefined,
  onCancel: () => undefined,
  onDrain: () => undefined,
};

/** Response headers of every call; stateless HPACK, so one block serves every connection. */
const OK_HEADERS = encodeStateless([':status', '200', 'content-type', 'application/grpc+proto', 'grpc-accept-encoding', 'identity,deflate,gzip']);
const OK_TRAILERS = encodeStateless(['grpc-status', '0']);

/** The longest delay a Node timer takes (2^31 - 1 ms); longer ones fire at once. */
const MAX_TIMER_MS = 2_147_483_647;
/** Inflated bytes always allowed before the ratio applies (small messages compress badly). */
const RATIO_FREE_BYTES = 64 * 1024;

export const DEADLINE_EXCEEDED: Status = { code: Code.DEADLINE_EXCEEDED, details: 'Deadline exceeded' };
export const CANCELLED: Status = { code: Code.CANCELLED, details: 'etcdgate: call cancelled by the client' };
/** The stream was reset here because the client did not read what it was sent (src/transport/http2/server.ts). */
export const NOT_READING: Status = { code: Code.RESOURCE_EXHAUSTED, details: 'etcdgate: stream reset: the client is not reading its responses' };

function refusal(code: number, details: string): Status {
  return { code, details: `etcdgate: ${details}` };
}

export class GrpcServerCall implements StreamHandler, MessageSink {
  handler: ServerCallHandler = NOBODY;
  /** The method path, e.g. "/etcdserverpb.KV/Range". */
  readonly path: string;
  /** Absolute deadline (ms since the epoch) from grpc-timeout; undefined when none. */
  readonly deadline: number | undefined;
  /** Monotonic ms when the request headers arrived. */
  readonly startedAt: number;
  /** The status the client got, once the call has ended. */
  ended: Status | undefined;
  /** Response headers have been sent. */
  headersSent = false;
  private readonly reader: MessageReader;
  private readonly encoding: string;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private readTimer: NodeJS.Timeout | undefined;
  private inflater: Gunzip | Inflate | undefined;
  private inflated = 0;
  private inflateFed = 0;
  /** Bytes taken from the budget (large messages, inflation), given back when the call ends. */
  private reserved = 0;
  /** Declared length of the message the current reservation is for (-1: none). */
  private reservedFor = -1;
  private cancelWait: (() => void) | undefined;
  private halfClosed = false;
  private paused = false;
  private unconsumed = 0;

  constructor(
    readonly stream: Http2Stream,
    /** The request headers as received (flat name, value list). */
    readonly fields: readonly string[],
    private readonly limits: ServerCallLimits,
    private readonly budget: Budget,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.startedAt = now();
    stream.handler = this;
    let path = '';
    let timeout: string | undefined;
    let encoding = 'identity';
    for (let i = 0; i < fields.length; i += 2) {
      const name = fields[i] as string;
      if (name === ':path') path = fields[i + 1] as string;
      else if (name === 'grpc-timeout') timeout = fields[i + 1];
      else if (name === 'grpc-encoding') encoding = fields[i + 1] as string;
    }
    this.path = path;
    this.encoding = encoding;
    this.reader = new MessageReader(limits.maxRecvBytes);
    this.timeoutMs = timeout === undefined ? undefined : (parseTimeout(timeout) ?? -1);
    this.rawTimeout = timeout;
    this.deadline = this.timeoutMs === undefined || this.timeoutMs < 0 ? undefined : Date.now() + this.timeoutMs;
  }

  private readonly timeoutMs: number | undefined;
  private readonly rawTimeout: string | undefined;

  /**
   * Hands the call to its owner and starts its clocks. `streaming`: a bidirectional call,
   * whose client may pause between messages (only a started message must complete in
   * time); otherwise the whole request must arrive within server.requestReadTimeoutMs.
   * A call whose headers were already unusable (a malformed grpc-timeout) is refused here,
   * and the handler hears it through onCancel.
   */
  attach(handler: ServerCallHandler, streaming: boolean): void {
    this.handler = handler;
    this.streaming = streaming;
    if (this.timeoutMs === -1) {
      this.refuseAndReport(refusal(Code.INTERNAL, `invalid grpc-timeout "${(this.rawTimeout ?? '').slice(0, 32)}"`), 'unreadable');
      return;
    }
    const ms = this.timeoutMs;
    if (ms !== undefined && ms <= MAX_TIMER_MS) this.deadlineTimer = setTimeout(() => this.expire('deadline', DEADLINE_EXCEEDED), ms);
    if (!streaming && !this.stream.remoteClosed) this.armReadTimer();
  }

  private streaming = false;

  /** The first value of request header `name` (lower-case), or undefined. */
  header(name: string): string | undefined {
    const fields = this.fields;
    for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
    return undefined;
  }

  /** The request's application metadata (no pseudo-headers, no gRPC or HTTP protocol headers). */
  metadata(): string[] {
    return customMetadata(this.fields);
  }

  // ------------------------------------------------------------ receiving

  onHeaders(_stream: Http2Stream, _fields: string[], endStream: boolean): void {
    // Request trailers: gRPC clients send none, and they carry nothing a call needs.
    if (endStream) this.onHalfCloseInternal();
  }

  onData(_stream: Http2Stream, data: Buffer, endStream: boolean): void {
    if (this.ended !== undefined) return;
    if (data.length > 0) {
      const error = this.reader.push(data, this);
      if (error !== undefined) {
        this.refuseWhileReading(error);
        return;
      }
      if (this.ended !== undefined) return;
      this.reserveForMessage();
      if (this.paused || this.waitingForBudget) this.unconsumed += data.length;
      else this.stream.consume(data.length);
      if (this.streaming) {
        if (this.reader.reading) this.armReadTimer();
        else this.clearReadTimer();
      }
    }
    if (endStream) this.onHalfCloseInternal();
  }

  private get waitingForBudget(): boolean {
    return this.cancelWait !== undefined;
  }

  /**
   * A message larger than one stream window needs its whole length reserved before more
   * of it is read; the stream's window stays closed until the budget allows.
   */
  private reserveForMessage(): void {
    const declared = this.reader.declaredLength;
    if (declared <= this.limits.smallMessageBytes || this.reservedFor === declared || this.cancelWait !== undefined) return;
    const connection = this.stream.connection;
    const take = (): boolean => {
      if (this.ended !== undefined) return true;
      if (!this.budget.reserve(connection, declared)) return false;
      this.reserved += declared;
      this.reservedFor = declared;
      return true;
    };
    if (take()) return;
    this.cancelWait = this.budget.wait(() => {
      if (!take()) return false;
      this.cancelWait = undefined;
      if (!this.paused) this.flushUnconsumed();
      return true;
    });
  }

  private flushUnconsumed(): void {
    const bytes = this.unconsumed;
    this.unconsumed = 0;
    if (bytes > 0 && this.ended === undefined) this.stream.consume(bytes);
  }

  /** Called by the message reader for each complete message. */
  onMessage(compressed: boolean, message: Buffer, framed: Buffer | undefined): void {
    if (this.ended !== undefined) return;
    if (compressed) {
      this.inflate(message);
      return;
    }
    this.handler.onMessage(this, message, framed);
    // A stream's message is handed on: its reservation is the next one's.
    if (this.streaming) this.releaseReservation();
  }

  private releaseReservation(): void {
    this.reservedFor = -1;
    if (this.reserved > 0) {
      this.budget.release(this.stream.connection, this.reserved);
      this.reserved = 0;
    }
  }

  onReset(_stream: Http2Stream, code: number, reason: ResetReason): void {
    this.stopInflating();
    if (this.ended !== undefined) {
      this.finish();
      return;
    }
    const status = reason === 'local-reset' && code === ENHANCE_YOUR_CALM ? NOT_READING : CANCELLED;
    this.ended = status;
    this.finish();
    this.handler.onCancel(this, reason === 'connection-lost' ? 'connection-lost' : 'client-reset', status);
  }

  onDrain(): void {
    if (this.ended === undefined) this.handler.onDrain(this);
  }

  /** Stops reading: the stream's window stays closed until resume (backpressure to the client). */
  pause(): void {
    this.paused = true;
  }

  resume(): void {
    if (!this.paused) return;
    this.paused = false;
    if (!this.waitingForBudget) this.flushUnconsumed();
  }

  private onHalfCloseInternal(): void {
    if (this.halfClosed || this.ended !== undefined) return;
    this.halfClosed = true;
    this.clearReadTimer();
    if (this.reader.reading) {
      this.refuseAndReport(refusal(Code.INTERNAL, 'the call ended in the middle of a message'), 'unreadable');
      return;
    }
    // With a compressed message still inflating, the half-close waits for it.
    if (this.inflater === undefined) this.handler.onHalfClose(this);
  }

  // ------------------------------------------------------------ inflating

  private inflate(compressed: Buffer): void {
    const encoding = this.encoding;
    if (encoding === 'identity') {
      // The compressed flag without a compression is a protocol error, as grpc-go treats it.
      this.refuseAndReport(refusal(Code.INTERNAL, 'request flagged compressed without a grpc-encoding'), 'unreadable');
      return;
    }
    if (encoding !== 'gzip' && encoding !== 'deflate') {
      this.refuseAndReport(refusal(Code.UNIMPLEMENTED, `request compressed with unsupported encoding "${encoding.slice(0, 32)}"`), 'unreadable');
      return;
    }
    if (this.inflater !== undefined) {
      // One compressed message at a time: a second one before the first is inflated is refused.
      this.refuseAndReport(refusal(Code.RESOURCE_EXHAUSTED, 'compressed messages arrive faster than they inflate'), 'unreadable');
      return;
    }
    const inflater = encoding === 'gzip' ? createGunzip() : createInflate();
    this.inflater = inflater;
    this.inflated = 0;
    this.inflateFed = compressed.length;
    const parts: Buffer[] = [];
    const max = this.limits.maxRecvBytes;
    inflater.on('data', (chunk: Buffer) => {
      if (this.inflater !== inflater) return;
      this.inflated += chunk.length;
      if (max >= 0 && this.inflated > max) {
        this.refuseAndReport(refusal(Code.RESOURCE_EXHAUSTED, `request message decompresses to more than server.maxRecvBytes (${max})`), 'unreadable');
        return;
      }
      if (this.inflated > RATIO_FREE_BYTES && this.inflated > this.inflateFed * this.limits.maxInflateRatio) {
        this.refuseAndReport(refusal(Code.RESOURCE_EXHAUSTED, `request message decompresses more than ${this.limits.maxInflateRatio} times its size`), 'unreadable');
        return;
      }
      if (!this.budget.reserve(this.stream.connection, chunk.length)) {
        this.refuseAndReport(refusal(Code.RESOURCE_EXHAUSTED, 'too many request bytes held: try again'), 'unreadable');
        return;
      }
      this.reserved += chunk.length;
      parts.push(chunk);
    });
    inflater.on('error', () => {
      if (this.inflater !== inflater) return;
      this.refuseAndReport(refusal(Code.INTERNAL, `request message could not be decompressed (${encoding})`), 'unreadable');
    });
    inflater.on('end', () => {
      if (this.inflater !== inflater) return;
      this.inflater = undefined;
      if (this.ended !== undefined) return;
      const message = Buffer.concat(parts, this.inflated);
      this.handler.onMessage(this, message, undefined);
      if (this.halfClosed && this.ended === undefined) this.handler.onHalfClose(this);
    });
    inflater.end(compressed);
  }

  private stopInflating(): void {
    const inflater = this.inflater;
    if (inflater === undefined) return;
    this.inflater = undefined;
    inflater.removeAllListeners('data');
    inflater.on('error', () => undefined);
    inflater.destroy();
  }

  // ------------------------------------------------------------ sending

  /** Sends the response headers (plus application metadata, a flat list), once. */
  sendHeaders(metadata?: readonly string[]): void {
    if (this.headersSent || this.ended !== undefined) return;
    this.headersSent = true;
    this.stream.sendHeaders(metadata === undefined || metadata.length === 0 ? OK_HEADERS : Buffer.concat([OK_HEADERS, encodeStateless(metadata)]), false);
  }

  /** Sends one response message (framed here). False once the stream's queue is long: wait for onDrain. */
  sendMessage(message: Buffer): boolean {
    return this.sendMessageParts([message], message.length);
  }

  /**
   * Sends one response message given as parts (`length` bytes in all), written one after
   * another. Many parts (a Range of many opened values) are joined first: the stream's
   * queue is made for a few buffers per message, not thousands.
   */
  sendMessageParts(parts: readonly Buffer[], length: number): boolean {
    if (this.ended !== undefined) return false;
    if (!this.headersSent) this.sendHeaders();
    if (parts.length > MAX_QUEUED_PARTS) return this.stream.sendDataParts([messagePrefix(length), Buffer.concat(parts, length)]);
    return this.stream.sendDataParts([messagePrefix(length), ...parts]);
  }

  /** Sends bytes that are already gRPC-framed messages (as etcd sent them), unchanged. */
  sendFramed(framed: Buffer): boolean {
    if (this.ended !== undefined) return false;
    if (!this.headersSent) this.sendHeaders();
    return this.stream.sendData(framed);
  }

  /**
   * Ends the call with `status` (trailers after the response, or a trailers-only answer
   * when nothing was sent). Returns the status the client got: `status`, or CANCELLED
   * when the client was already gone, or the earlier status if the call had ended.
   */
  end(status: Status): Status {
    if (this.ended !== undefined) return this.ended;
    this.ended = status;
    const stream = this.stream;
    if (stream.wasReset || stream.localClosed) {
      this.ended = CANCELLED;
      this.finish();
      return CANCELLED;
    }
    if (!this.headersSent) {
      this.headersSent = true;
      stream.sendHeaders(trailersOnlyBlock(status), true);
    } else {
      stream.sendTrailers(status.code === 0 && status.metadata === undefined ? OK_TRAILERS : trailerBlock(status));
    }
    // A client still sending is told to stop (RFC 9113 8.1); nothing it sends is read.
    if (!stream.remoteClosed && stream.queuedBytes === 0) stream.reset(NO_ERROR);
    this.finish();
    return status;
  }

  /** Bytes queued on the stream and not yet sent. */
  get queuedBytes(): number {
    return this.stream.queuedBytes;
  }

  // ------------------------------------------------------------ ending

  private refuseWhileReading(error: ReadError): void {
    const status =
      error.kind === 'too-large'
        ? refusal(Code.RESOURCE_EXHAUSTED, `request message larger than server.maxRecvBytes (${error.declared} vs ${this.limits.maxRecvBytes})`)
        : refusal(Code.INTERNAL, `invalid message flag ${error.flag}`);
    this.refuseAndReport(status, 'unreadable');
  }

  private refuseAndReport(status: Status, reason: CancelReason): void {
    if (this.ended !== undefined) return;
    this.stopInflating();
    const sent = this.end(status);
    this.handler.onCancel(this, reason, sent);
  }

  private expire(reason: 'deadline' | 'read-timeout', status: Status): void {
    if (reason === 'deadline') this.deadlineTimer = undefined;
    else this.readTimer = undefined;
    if (this.ended !== undefined) return;
    this.stopInflating();
    const sent = this.end(status);
    // The stream is reset so the peer stops sending and nothing more is held for it.
    if (!this.stream.closed) this.stream.reset(NO_ERROR);
    this.handler.onCancel(this, reason, sent);
  }

  private armReadTimer(): void {
    if (this.readTimer !== undefined || this.ended !== undefined) return;
    const ms = this.limits.readTimeoutMs;
    if (ms <= 0) return;
    this.readTimer = setTimeout(() => {
      this.readTimer = undefined;
      this.expire('read-timeout', refusal(Code.DEADLINE_EXCEEDED, `request not received within server.requestReadTimeoutMs (${ms} ms)`));
    }, ms);
  }

  private clearReadTimer(): void {
    if (this.readTimer !== undefined) clearTimeout(this.readTimer);
    this.readTimer = undefined;
  }

  /** Gives back everything the call held. Runs once the call has ended. */
  private finish(): void {
    this.clearReadTimer();
    if (this.deadlineTimer !== undefined) clearTimeout(this.deadlineTimer);
    this.deadlineTimer = undefined;
    this.cancelWait?.();
    this.cancelWait = undefined;
    this.releaseReservation();
  }

}

function statusFields(status: Status): string[] {
  const fields = ['grpc-status', String(status.code)];
  if (status.details !== '') fields.push('grpc-message', encodeGrpcMessage(status.details));
  if (status.metadata !== undefined) fields.push(...status.metadata);
  return fields;
}

function trailerBlock(status: Status): Buffer {
  return encodeStateless(statusFields(status));
}

function trailersOnlyBlock(status: Status): Buffer {
  return Buffer.concat([OK_HEADERS, encodeStateless(statusFields(status))]);
}
