/**
 * HTTP/1.1 on the client listener: node:http's server, never listening itself, is fed
 * each verified TLS socket whose client negotiated ALPN `http/1.1` or none (the listener
 * hands it over; src/gateway/index.ts decides). Node's HTTP parser (llhttp, strict mode)
 * is the request-smuggling defence: a request with both Content-Length and
 * Transfer-Encoding, two different Content-Lengths, a malformed chunk size or a bare LF
 * is answered `400 Bad Request` with `Connection: close` and the socket closed; a head
 * larger than gateway.maxHeaderBytes gets 431 and the same.
 *
 * Time limits, all enforced by Node's own connection checks:
 * - gateway.headersTimeoutMs: from a request's first byte to the end of its head (408, closed);
 * - gateway.headersTimeoutMs + bodyTimeoutMs: for the whole request (408, closed);
 * - gateway.idleTimeoutMs: a keep-alive connection waiting for its next request.
 * Node runs those checks only once its server has emitted 'listening'; this server
 * never listens (sockets come from the TLS listener), so it emits the event itself.
 *
 * Pipelined requests are served one after another (each starts once the previous one
 * is answered), at most MAX_PIPELINED queued per connection; keep-alive is the
 * default, as in Go.
 */
import * as http from 'node:http';
import type { Duplex } from 'node:stream';
import type * as tls from 'node:tls';
import type { Client } from '../proxy/gate.js';
import type { GatewayConfig } from '../config/types.js';
import type { Exchange } from './exchange.js';

/** How often Node checks the header and request timeouts: often enough for the smallest configured one. */
function checkingInterval(config: GatewayConfig): number {
  return Math.max(50, Math.min(1000, Math.floor(config.headersTimeoutMs / 4)));
}

/** Per-socket state: its verified client (the exchanges' `client`) and its queue of pipelined requests. */
const CLIENT = Symbol('etcdgate.client');
const TAIL = Symbol('etcdgate.pipelineTail');
const PENDING = Symbol('etcdgate.pipelinePending');
type KeyedSocket = tls.TLSSocket & { [CLIENT]?: Client; [TAIL]?: Promise<void>; [PENDING]?: number };

/**
 * Requests a client may pipeline ahead of the one being answered; beyond it the
 * connection is dropped. Node parses pipelined requests as they arrive, so without a
 * bound a client could queue any number of them in memory.
 */
const MAX_PIPELINED = 16;

/** An exchange over one node:http request and its response. */
class Http1Exchange implements Exchange {
  readonly version = '1.1' as const;
  readonly method: string;
  readonly target: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: http.IncomingMessage;
  private finished = false;
  private goneListeners: (() => void)[] = [];
  private isGone = false;

  constructor(
    readonly client: Client,
    request: http.IncomingMessage,
    private readonly response: http.ServerResponse,
  ) {
    this.method = request.method ?? '';
    this.target = request.url ?? '';
    this.headers = request.headers;
    this.body = request;
    response.once('finish', () => {
      this.finished = true;
    });
    response.once('close', () => {
      if (this.finished) return;
      this.isGone = true;
      for (const listener of this.goneListeners.splice(0)) listener();
    });
  }

  get gone(): boolean {
    return this.isGone;
  }

  onGone(listener: () => void): void {
    if (this.isGone) listener();
    else this.goneListeners.push(listener);
  }

  send(status: number, headers: http.OutgoingHttpHeaders, body: string | Buffer, close = false): void {
    if (this.isGone || this.response.headersSent) return;
    if (close) {
      // Node closes the socket once this answer is written, and reads no further request.
      this.response.shouldKeepAlive = false;
      headers = { ...headers, connection: 'close' };
    }
    this.response.writeHead(status, headers);
    this.response.end(body);
  }

  startStream(status: number, headers: http.OutgoingHttpHeaders): void {
    if (this.isGone || this.response.headersSent) return;
    this.response.writeHead(status, headers);
    // Headers out now, so a client waiting for its first event knows the call is open.
    this.response.flushHeaders();
  }

  write(chunk: string | Buffer, flushed?: () => void): boolean {
    if (this.isGone) return true;
    return this.response.write(chunk, flushed);
  }

  onDrain(listener: () => void): void {
    this.response.once('drain', listener);
  }

  end(): void {
    if (!this.isGone) this.response.end();
  }
}

/** Node's parser error codes that are not a plain 400. */
const PARSE_ERROR_STATUS: Readonly<Record<string, number>> = {
  HPE_HEADER_OVERFLOW: 431,
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 413,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

/**
 * A request Node's parser refused (smuggling attempt, oversized head, bad chunk): answered
 * with its status and `Connection: close`, then the socket is closed. Node's default
 * handler answers only on a socket that has written nothing yet, which a TLS socket handed
 * over after its handshake may not count as; the answer is written here in every case.
 */
function answerParseError(error: NodeJS.ErrnoException, socket: Duplex): void {
  if (error.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  const status = PARSE_ERROR_STATUS[error.code ?? ''] ?? 400;
  const reason = http.STATUS_CODES[status] ?? 'Bad Request';
  socket.end(`HTTP/1.1 ${status} ${reason}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`, () => socket.destroy());
}

/** The HTTP/1.1 side of the gateway. */
export class Http1Gateway {
  private readonly server: http.Server;

  constructor(config: GatewayConfig, serve: (exchange: Exchange) => void) {
    this.server = http.createServer({
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.headersTimeoutMs,
      requestTimeout: config.headersTimeoutMs + config.bodyTimeoutMs,
      keepAliveTimeout: config.idleTimeoutMs,
      connectionsCheckingInterval: checkingInterval(config),
      // Strict parsing (the default, stated): lenient parsing is what smuggling needs.
      insecureHTTPParser: false,
      // Go's server requires Host on HTTP/1.1 too.
      requireHostHeader: true,
    });
    this.server.on('request', (request: http.IncomingMessage, response: http.ServerResponse) => {
      const socket = request.socket as KeyedSocket;
      // RFC 9112 9.3.2: pipelined requests that are not safe (every RPC is a POST) are
      // run one after another, as Go's server does; Node only orders the answers.
      const pending = (socket[PENDING] ?? 0) + 1;
      if (pending > MAX_PIPELINED) {
        socket.destroy();
        return;
      }
      socket[PENDING] = pending;
      const answered = new Promise<void>((resolve) => response.once('close', resolve));
      const previous = socket[TAIL] ?? Promise.resolve();
      socket[TAIL] = previous.then(() => answered);
      void answered.then(() => {
        socket[PENDING] = (socket[PENDING] ?? 1) - 1;
      });
      const client = socket[CLIENT];
      if (client === undefined) {
        // Only verified sockets are accepted (accept sets it): anything else is dropped.
        socket.destroy();
        return;
      }
      void previous.then(() => serve(new Http1Exchange(client, request, response)));
    });
    this.server.on('clientError', answerParseError);
    // See the file comment: starts Node's header and request timeout checks.
    this.server.emit('listening');
  }

  /** Serves HTTP/1.1 on a verified socket of `client`. */
  accept(socket: tls.TLSSocket, client: Client): void {
    (socket as KeyedSocket)[CLIENT] = client;
    this.server.emit('connection', socket);
  }

  /** Stops: idle connections are closed now, busy ones after their current answer. */
  close(): void {
    this.server.close();
    this.server.closeIdleConnections();
  }

  /** Drops every connection at once (end of the shutdown grace). */
  closeAll(): void {
    this.server.closeAllConnections();
  }
}
