/**
 * One HTTP/2 stream (RFC 9113 5.1): its two flow-control windows, the data queued for
 * sending while the peer's window is closed, and the handler that hears what arrives.
 * The connection (connection.ts) owns every stream and does the framing; a stream only
 * keeps its own state and asks its connection to send.
 *
 * Life: open -> half-closed (one side sent END_STREAM) -> closed (both, or a reset).
 * Once closed, the handler hears nothing more and queued data is dropped.
 */
import type { Http2Connection } from './connection.js';

/** Why a stream ended without both sides finishing normally. */
export type ResetReason =
  /** The peer sent RST_STREAM (the code is the peer's). */
  | 'peer-reset'
  /** The connection closed or failed under the stream. */
  | 'connection-lost'
  /** The peer's GOAWAY said this stream was never processed: safe to retry elsewhere. */
  | 'refused'
  /** This side reset it (stream error, limit, cancel). */
  | 'local-reset';

/** What a stream's owner hears. Called only while the stream is open. */
export interface StreamHandler {
  /** A header block: request or response headers, or trailers (the last one has endStream). */
  onHeaders(stream: Http2Stream, fields: string[], endStream: boolean): void;
  /** A DATA payload (a view into the connection's read buffer: copy what you keep beyond this call). */
  onData(stream: Http2Stream, data: Buffer, endStream: boolean): void;
  /** The stream ended abnormally; nothing more will arrive. */
  onReset(stream: Http2Stream, code: number, reason: ResetReason): void;
  /** Queued data went out and the queue is now short: more may be written. */
  onDrain(stream: Http2Stream): void;
}

/** A handler for streams nobody listens to any more: everything is dropped. */
export const IGNORE: StreamHandler = {
  onHeaders: () => undefined,
  onData: () => undefined,
  onReset: () => undefined,
  onDrain: () => undefined,
};

export class Http2Stream {
  handler: StreamHandler = IGNORE;
  /** Bytes this side may still send (the peer's window for this stream). */
  sendWindow: number;
  /** Bytes the peer may still send before this side opens the window again. */
  recvWindow: number;
  /** Bytes received and taken by the handler, not yet announced in a WINDOW_UPDATE. */
  unannounced = 0;
  /** This side sent END_STREAM or RST_STREAM. */
  localClosed = false;
  /** The peer sent END_STREAM or RST_STREAM. */
  remoteClosed = false;
  /** Ended by a reset (either side): nothing is sent any more. */
  wasReset = false;
  /** Whether a header block has arrived (the next one is trailers). */
  headersReceived = false;
  /** Server role: the request's content-length (-1: none), and the DATA bytes received against it. */
  declaredLength = -1;
  receivedLength = 0;
  /**
   * Data waiting for window: `queue[queueHead]` is the first buffer not wholly sent, and
   * `queueOffset` bytes of it are. Sent buffers are skipped by the head and cut off in
   * batches (Connection.takeFromQueue): a shift per buffer would move the whole array
   * each time, quadratic in a queue of many small messages.
   */
  readonly queue: Buffer[] = [];
  queueHead = 0;
  queueOffset = 0;
  queuedBytes = 0;
  /** END_STREAM after the queued data (with no trailers). */
  endAfterQueue = false;
  /** A trailer block (HPACK-encoded) to send with END_STREAM after the queued data. */
  pendingTrailers: Buffer | undefined;
  /** sendData said "wait": the handler hears onDrain once the queue is short again. */
  drainWanted = false;
  /** Monotonic ms when queued data last left (or the queue last started): a stream whose queue makes no progress is a peer not reading. */
  progressAt = 0;
  /** DATA sent since the peer's last WINDOW_UPDATE for this stream (flood accounting). */
  sentSinceUpdate = 0;
  /** Set by the stream's owner: anything it wants to find again from the stream. */
  owner: unknown;

  constructor(
    readonly id: number,
    readonly connection: Http2Connection,
    sendWindow: number,
    recvWindow: number,
  ) {
    this.sendWindow = sendWindow;
    this.recvWindow = recvWindow;
  }

  get closed(): boolean {
    return this.localClosed && this.remoteClosed;
  }

  /** Sends a header block now (headers are not flow-controlled). */
  sendHeaders(block: Buffer, endStream: boolean): void {
    this.connection.sendHeaders(this, block, endStream);
  }

  /** Queues data; it leaves as the peer's windows allow. Returns false once the queue is long (wait for onDrain). */
  sendData(data: Buffer, endStream = false): boolean {
    return this.connection.sendData(this, data, endStream);
  }

  /** sendData of buffers to be sent one after another (framed as if they were one). */
  sendDataParts(parts: readonly Buffer[], endStream = false): boolean {
    return this.connection.sendDataParts(this, parts, endStream);
  }

  /** Ends the stream with a trailer block, after any queued data. */
  sendTrailers(block: Buffer): void {
    this.connection.sendTrailers(this, block);
  }

  /** Resets the stream (RST_STREAM with `code`); queued data is dropped. */
  reset(code: number): void {
    this.connection.resetStream(this, code);
  }

  /** The handler has taken `bytes` of received DATA: the peer may send that much more. */
  consume(bytes: number): void {
    this.connection.consume(this, bytes);
  }
}
