/**
 * One HTTP request and its answer, whichever HTTP carried it: HTTP/1.1 (node:http,
 * src/gateway/http1.ts) or a non-gRPC HTTP/2 stream (src/gateway/http2.ts). The
 * gateway's handlers (src/gateway/handler.ts) see only this, so the routes, the JSON
 * mapping and the gate behave the same on both.
 *
 * Invariant: an exchange is answered at most once (`send` or `startStream`); after the
 * client went away (`gone`) nothing more is written.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { Client } from '../proxy/gate.js';

export interface Exchange {
  /** "1.1" or "2", for the audit record. */
  readonly version: '1.1' | '2';
  readonly method: string;
  /** The request target as sent (path and query). */
  readonly target: string;
  readonly headers: IncomingHttpHeaders;
  /** The verified connection the request came on. */
  readonly client: Client;
  /** The request body as it arrives. */
  readonly body: Readable;
  /** True once the client closed its side or reset the stream before the answer was complete. */
  readonly gone: boolean;
  /** Called once if the client goes away before the answer is complete. */
  onGone(listener: () => void): void;
  /** Sends a complete answer; `close`: drop the connection (HTTP/1.1) or the stream after it. */
  send(status: number, headers: OutgoingHttpHeaders, body: string | Buffer, close?: boolean): void;
  /** Starts an answer whose body follows in pieces (chunked on HTTP/1.1). */
  startStream(status: number, headers: OutgoingHttpHeaders): void;
  /** Writes one piece of a started answer; `flushed` runs once it is handed to the connection. False when the client is not keeping up. */
  write(chunk: string | Buffer, flushed?: () => void): boolean;
  /** Calls `listener` once the client has taken what was written (after write returned false). */
  onDrain(listener: () => void): void;
  /** Ends a started answer. */
  end(): void;
}
