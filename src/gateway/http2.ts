/**
 * HTTP/2 requests that are not gRPC (a content-type without application/grpc), as etcd
 * serves its gateway on the same HTTP/2 connections as gRPC: the router
 * (src/proxy/router.ts) hands such a stream here. The connection's limits (streams,
 * header list size, flow control) are those of every stream on etcdgate's HTTP/2
 * server; the body's size and time limits are the gateway's (src/gateway/handler.ts).
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { Readable } from 'node:stream';
import type { Client } from '../proxy/gate.js';
import { encodeStateless } from '../transport/hpack/index.js';
import { CANCEL, NO_ERROR } from '../transport/http2/constants.js';
import type { Http2Stream, StreamHandler } from '../transport/http2/stream.js';
import type { Exchange } from './exchange.js';

/** HTTP/2 forbids connection-specific headers (RFC 9113 8.2.2): they are dropped from answers. */
const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade']);

function headerBlock(status: number, headers: OutgoingHttpHeaders): Buffer {
  const fields: string[] = [':status', String(status)];
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (value === undefined || CONNECTION_SPECIFIC.has(lower)) continue;
    for (const one of Array.isArray(value) ? value : [value]) fields.push(lower, String(one));
  }
  return encodeStateless(fields);
}

/** The request headers as node:http shapes them (lower-case names, repeated ones joined), pseudo-headers included. */
function incomingHeaders(fields: readonly string[]): IncomingHttpHeaders {
  const headers: IncomingHttpHeaders = {};
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    const existing = headers[name];
    headers[name] = existing === undefined ? value : `${String(existing)}, ${value}`;
  }
  return headers;
}

/** An exchange over one stream of etcdgate's HTTP/2 server. */
export class Http2Exchange implements Exchange {
  readonly version = '2' as const;
  readonly method: string;
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
  readonly body: Readable;
  private answered = false;
  private finished = false;
  private isGone = false;
  private readonly goneListeners: (() => void)[] = [];
  private readonly drainListeners: (() => void)[] = [];
  /** Body bytes handed to the reader and not yet taken (the stream's window reopens as they are). */
  private unconsumed = 0;

  constructor(
    private readonly stream: Http2Stream,
    fields: readonly string[],
    readonly client: Client,
    endStream: boolean,
  ) {
    this.headers = incomingHeaders(fields);
    this.method = String(this.headers[':method'] ?? '');
    this.target = String(this.headers[':path'] ?? '');
    this.body = new Readable({
      read: () => {
        // The reader wants more: give the window back for what it took.
        const bytes = this.unconsumed;
        this.unconsumed = 0;
        if (bytes > 0) this.stream.consume(bytes);
      },
    });
    const handler: StreamHandler = {
      onHeaders: (_stream, _fields, end) => {
        if (end) this.body.push(null);
      },
      onData: (_stream, data, end) => this.onBody(data, end),
      onReset: () => this.onReset(),
      onDrain: () => {
        for (const listener of this.drainListeners.splice(0)) listener();
      },
    };
    stream.handler = handler;
    if (endStream) this.body.push(null);
  }

  private onBody(data: Buffer, endStream: boolean): void {
    if (data.length > 0) {
      this.unconsumed += data.length;
      // Copied: the view belongs to the connection's read buffer.
      if (this.body.push(Buffer.from(data))) {
        const bytes = this.unconsumed;
        this.unconsumed = 0;
        this.stream.consume(bytes);
      }
    }
    if (endStream) this.body.push(null);
  }

  private onReset(): void {
    if (this.finished) return;
    this.isGone = true;
    this.body.destroy();
    for (const listener of this.goneListeners.splice(0)) listener();
  }


  get gone(): boolean {
    return this.isGone;
  }

  onGone(listener: () => void): void {
    if (this.isGone) listener();
    else this.goneListeners.push(listener);
  }

  send(status: number, headers: OutgoingHttpHeaders, body: string | Buffer, close = false): void {
    if (this.isGone || this.answered) return;
    this.answered = true;
    this.finished = true;
    const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    this.stream.sendHeaders(headerBlock(status, headers), bytes.length === 0);
    if (bytes.length > 0) this.stream.sendData(bytes, true);
    // The unread rest of the body: the client is told to stop once the answer is out.
    if (close && !this.stream.remoteClosed) this.stream.reset(CANCEL);
    else if (!this.stream.remoteClosed && this.stream.queuedBytes === 0) this.stream.reset(NO_ERROR);
  }

  startStream(status: number, headers: OutgoingHttpHeaders): void {
    if (this.isGone || this.answered) return;
    this.answered = true;
    this.stream.sendHeaders(headerBlock(status, headers), false);
  }

  write(chunk: string | Buffer, flushed?: () => void): boolean {
    if (this.isGone) return true;
    const more = this.stream.sendData(typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk);
    // Handed to the connection: its flow control takes it from here.
    flushed?.();
    return more;
  }

  onDrain(listener: () => void): void {
    this.drainListeners.push(listener);
  }

  end(): void {
    if (this.isGone) return;
    this.finished = true;
    this.stream.sendData(Buffer.alloc(0), true);
  }
}
