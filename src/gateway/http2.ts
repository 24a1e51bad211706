/**
 * HTTP/2 requests that are not gRPC (a content-type other than application/grpc*), as
 * etcd serves its gateway on the same HTTP/2 connections as gRPC: the stream router
 * (src/proxy/stream-router.ts) hands such a stream here instead of answering 415.
 * The HTTP/2 connection limits (streams, header list size) are the gRPC server's.
 */
import type * as http2 from 'node:http2';
import type { OutgoingHttpHeaders } from 'node:http';
import type { Exchange } from './exchange.js';

/** An exchange over one node:http2 server stream. */
export class Http2Exchange implements Exchange {
  readonly version = '2' as const;
  readonly method: string;
  readonly target: string;
  readonly peer: string;
  private finished = false;
  private isGone = false;
  private goneListeners: (() => void)[] = [];

  constructor(
    private readonly stream: http2.ServerHttp2Stream,
    readonly headers: http2.IncomingHttpHeaders,
  ) {
    this.method = headers[':method'] ?? '';
    this.target = headers[':path'] ?? '';
    const socket = stream.session?.socket;
    this.peer = `${socket?.remoteAddress ?? ''}:${socket?.remotePort ?? 0}`;
    // Errors on the stream always come with 'close', which is where they are handled.
    stream.on('error', () => undefined);
    stream.once('close', () => {
      if (this.finished) return;
      this.isGone = true;
      for (const listener of this.goneListeners.splice(0)) listener();
    });
  }

  get body(): http2.ServerHttp2Stream {
    return this.stream;
  }

  get gone(): boolean {
    return this.isGone;
  }

  onGone(listener: () => void): void {
    if (this.isGone) listener();
    else this.goneListeners.push(listener);
  }

  /** HTTP/2 forbids connection-specific headers (RFC 9113 8.2.2): they are dropped. */
  private static strip(headers: OutgoingHttpHeaders): OutgoingHttpHeaders {
    const out: OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(headers)) if (name !== 'connection' && name !== 'keep-alive' && name !== 'transfer-encoding') out[name] = value;
    return out;
  }

  send(status: number, headers: OutgoingHttpHeaders, body: string | Buffer, close = false): void {
    if (this.isGone || this.stream.headersSent || this.stream.destroyed) return;
    this.finished = true;
    this.stream.respond({ ':status': status, ...Http2Exchange.strip(headers) });
    this.stream.end(body);
    // The unread rest of the body: reset the stream once the answer is out.
    if (close) this.stream.once('finish', () => this.stream.close(0x8 /* CANCEL */));
  }

  startStream(status: number, headers: OutgoingHttpHeaders): void {
    if (this.isGone || this.stream.headersSent || this.stream.destroyed) return;
    this.stream.respond({ ':status': status, ...Http2Exchange.strip(headers) });
  }

  write(chunk: string | Buffer, flushed?: () => void): boolean {
    if (this.isGone || this.stream.destroyed) return true;
    return this.stream.write(chunk, flushed);
  }

  onDrain(listener: () => void): void {
    this.stream.once('drain', listener);
  }

  end(): void {
    if (this.isGone || this.stream.destroyed) return;
    this.finished = true;
    this.stream.end();
  }
}
