/**
 * Unary calls to one etcd endpoint over a plain `node:http2` session: one request
 * message out, one response message and a status back, bytes untouched. Streams
 * (Watch, LeaseKeepAlive, Snapshot) stay on the endpoint's grpc-js channel; unary calls
 * are most of the traffic, and for them grpc-js's client layers (resolving, retrying,
 * load-balancing and subchannel calls, interceptors, filters) were the largest share of
 * etcdgate's own CPU per request (docs/performance.md).
 *
 * The session is opened on first use and replaced when it closes, errors or receives
 * GOAWAY; calls in flight on a replaced session run to their end. A call that failed
 * before its request could have reached etcd (no connection, stream refused) says so
 * with `notSent`, so the caller may try another endpoint even for a write.
 */
import * as http2 from 'node:http2';
import { isIP } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { frameMessage } from '../grpc-frame.js';
import type { Status } from '../proxy/status.js';

const {
  NGHTTP2_CANCEL,
  NGHTTP2_REFUSED_STREAM,
  NGHTTP2_ENHANCE_YOUR_CALM,
  NGHTTP2_INADEQUATE_SECURITY,
} = http2.constants;

/** TLS material and limits for one endpoint's sessions. */
export interface UnaryConnectionOptions {
  readonly ca: Buffer;
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
  /** Name checked on etcd's certificate (and sent as SNI) instead of the URL's host. */
  readonly serverName?: string | undefined;
  /** Largest response message accepted, bytes; -1 for no limit. */
  readonly maxRecvBytes: number;
  /** A connection not established within this time is given up, ms. */
  readonly dialTimeoutMs: number;
  /** Ping interval on an open session, ms; a ping unanswered within keepaliveTimeoutMs closes it. */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Sent as user-agent, so etcd's logs show who called. */
  readonly userAgent: string;
}

/** What one unary call needs besides the method and the request bytes. */
export interface UnaryCallOptions {
  /** Extra request headers (allowlisted client metadata), or undefined for none. */
  readonly metadata?: http2.OutgoingHttpHeaders | undefined;
  /** The request already framed (the client's own bytes), sent as they are. */
  readonly framed?: Buffer | undefined;
  /** Absolute deadline, ms since the epoch (a grpc-js Deadline: Date or number). */
  readonly deadline?: grpc.Deadline | undefined;
  /** Registers the function that cancels the call in flight. */
  readonly onCancel?: ((cancel: () => void) => void) | undefined;
}

/** etcd's answer to a call that ended OK. */
export interface UnaryReply {
  readonly response: Buffer;
  /** The same message with its 5-byte gRPC prefix, as etcd sent it. */
  readonly framed: Buffer;
  /** etcd's response headers, only when they hold more than the gRPC protocol's own. */
  readonly headers: grpc.Metadata | undefined;
  /** etcd's trailers, only when they hold more than grpc-status and grpc-message. */
  readonly trailers: grpc.Metadata | undefined;
}

/**
 * A failed call: the status for the client, whether etcd cannot have seen the request,
 * and whether this status is etcd's own answer (its grpc-status arrived). A call that is
 * neither notSent nor answered ended without etcd's answer: etcd may have applied it.
 */
export interface UnaryFailure extends Status {
  readonly notSent: boolean;
  readonly answered?: true;
}

/**
 * Headers of the gRPC and HTTP protocols, never relayed as metadata. etcd behind TLS
 * serves gRPC through Go's HTTP server, which adds `trailer` and its CORS headers
 * (`access-control-*`) to every answer; they describe the HTTP exchange, not the call.
 */
const PROTOCOL_HEADERS = new Set(['content-type', 'content-length', 'grpc-status', 'grpc-message', 'grpc-encoding', 'grpc-accept-encoding', 'date', 'trailer']);
const isProtocolHeader = (name: string): boolean => name.startsWith(':') || PROTOCOL_HEADERS.has(name) || name.startsWith('access-control-');

/** The longest delay a Node timer takes (2^31 - 1 ms); a longer one fires at once. */
const MAX_TIMER_MS = 2_147_483_647;

/** Node refuses new streams with ENHANCE_YOUR_CALM past this much buffered data (MB); flow control bounds it anyway. */
const MAX_SESSION_MEMORY_MB = 1024;

/** Receive windows: large enough that a big Range answer is not throttled by round trips. */
const STREAM_WINDOW_BYTES = 4 * 1024 * 1024;
const SESSION_WINDOW_BYTES = 16 * 1024 * 1024;

function failure(code: grpc.status, details: string, notSent = false, metadata?: grpc.Metadata): UnaryFailure {
  return metadata === undefined ? { code, details, notSent } : { code, details, notSent, metadata };
}

/** A failure that is etcd's answer: it executed (or refused) the request and said so. */
function answeredFailure(code: grpc.status, details: string, metadata?: grpc.Metadata): UnaryFailure {
  return { ...failure(code, details, false, metadata), answered: true };
}

/** Metadata of the non-protocol entries of a header block, or undefined when there are none. */
function customMetadata(headers: http2.IncomingHttpHeaders): grpc.Metadata | undefined {
  let metadata: grpc.Metadata | undefined;
  for (const name of Object.keys(headers)) {
    if (isProtocolHeader(name)) continue;
    const value = headers[name];
    if (value === undefined) continue;
    metadata ??= new grpc.Metadata();
    for (const one of Array.isArray(value) ? value : [value]) {
      if (name.endsWith('-bin')) metadata.add(name, Buffer.from(one, 'base64'));
      else metadata.add(name, one);
    }
  }
  return metadata;
}

/** grpc-message is percent-encoded on the wire. */
function statusMessage(raw: string | string[] | undefined): string {
  const text = Array.isArray(raw) ? raw.join(',') : (raw ?? '');
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** The grpc-timeout header for `ms` milliseconds (at most 8 digits, so long deadlines go in seconds). */
function timeoutHeader(ms: number): string {
  // Whole units only: a fraction is not a valid TimeoutValue, and etcd answers it with HTTP 500.
  return ms < 100_000_000 ? `${Math.ceil(ms)}m` : `${Math.ceil(ms / 1000)}S`;
}

/** The status gRPC assigns to a stream reset without a grpc-status. */
function resetStatus(rstCode: number): UnaryFailure {
  switch (rstCode) {
    case NGHTTP2_REFUSED_STREAM:
      return failure(grpc.status.UNAVAILABLE, 'etcdgate: etcd refused the stream', true);
    case NGHTTP2_CANCEL:
      return failure(grpc.status.CANCELLED, 'etcdgate: call cancelled');
    case NGHTTP2_ENHANCE_YOUR_CALM:
      return failure(grpc.status.RESOURCE_EXHAUSTED, 'etcdgate: etcd reset the stream (ENHANCE_YOUR_CALM)');
    case NGHTTP2_INADEQUATE_SECURITY:
      return failure(grpc.status.PERMISSION_DENIED, 'etcdgate: etcd reset the stream (INADEQUATE_SECURITY)');
    default:
      return failure(grpc.status.INTERNAL, `etcdgate: etcd reset the stream (code ${rstCode})`);
  }
}

function toEpochMs(deadline: grpc.Deadline): number {
  return deadline instanceof Date ? deadline.getTime() : deadline;
}

function errorCode(error: unknown): string {
  return typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string' ? error.code : 'error';
}

/** One endpoint's unary-call connection. */
export class UnaryConnection {
  private session: http2.ClientHttp2Session | undefined;
  /** Sessions etcd accepted (its SETTINGS arrived): a stream failing on any other never reached etcd. */
  private readonly connected = new WeakSet<http2.ClientHttp2Session>();
  private closed = false;

  constructor(
    private readonly url: string,
    private readonly options: UnaryConnectionOptions,
  ) {}

  /** Sends one unary call; resolves with etcd's answer or rejects with a UnaryFailure. */
  call(path: string, request: Buffer, options: UnaryCallOptions = {}): Promise<UnaryReply> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(failure(grpc.status.UNAVAILABLE, 'etcdgate: upstream connection closed', true));
        return;
      }
      const headers: http2.OutgoingHttpHeaders = {
        ':method': 'POST',
        ':path': path,
        'content-type': 'application/grpc',
        te: 'trailers',
        'user-agent': this.options.userAgent,
      };
      let timer: NodeJS.Timeout | undefined;
      // Milliseconds left before the client's deadline; undefined when it set none.
      let remaining: number | undefined;
      if (options.deadline !== undefined && options.deadline !== Infinity) {
        remaining = toEpochMs(options.deadline) - Date.now();
        if (remaining <= 0) {
          reject(failure(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded', true));
          return;
        }
        headers['grpc-timeout'] = timeoutHeader(remaining);
      }
      if (options.metadata !== undefined) Object.assign(headers, options.metadata);

      const session = this.open();
      let stream: http2.ClientHttp2Stream;
      try {
        stream = session.request(headers);
      } catch (error: unknown) {
        // The session went away between open() and request(): nothing was sent.
        this.forget(session);
        reject(failure(grpc.status.UNAVAILABLE, `etcdgate: etcd endpoint ${this.url} not reachable (${errorCode(error)})`, true));
        return;
      }

      let settled = false;
      const settle = (outcome: UnaryReply | UnaryFailure): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        if ('response' in outcome) resolve(outcome);
        else reject(outcome);
      };
      // Past what a Node timer holds (~24.8 days) a deadline is left to etcd alone.
      if (remaining !== undefined && remaining <= MAX_TIMER_MS) {
        timer = setTimeout(() => {
          settle(failure(grpc.status.DEADLINE_EXCEEDED, 'Deadline exceeded'));
          stream.close(NGHTTP2_CANCEL);
        }, remaining);
      }
      options.onCancel?.(() => {
        settle(failure(grpc.status.CANCELLED, 'etcdgate: call cancelled'));
        stream.close(NGHTTP2_CANCEL);
      });

      let responseHeaders: http2.IncomingHttpHeaders | undefined;
      let trailers: http2.IncomingHttpHeaders | undefined;
      let chunks: Buffer[] = [];
      let received = 0;
      let streamError: unknown;
      const maxRecv = this.options.maxRecvBytes;

      stream.on('response', (incoming) => {
        responseHeaders = incoming;
      });
      stream.on('trailers', (incoming) => {
        trailers = incoming;
      });
      stream.on('data', (chunk: Buffer) => {
        received += chunk.length;
        // Five bytes of gRPC framing come with the message.
        if (maxRecv >= 0 && received > maxRecv + 5) {
          settle(failure(grpc.status.RESOURCE_EXHAUSTED, `etcdgate: etcd's response is larger than upstream.maxRecvBytes (${maxRecv})`));
          stream.close(NGHTTP2_CANCEL);
          chunks = [];
          return;
        }
        chunks.push(chunk);
      });
      stream.on('error', (error: unknown) => {
        streamError = error;
      });
      stream.on('close', () => {
        if (settled) return;
        const statusHeaders = trailers ?? (responseHeaders !== undefined && 'grpc-status' in responseHeaders ? responseHeaders : undefined);
        if (statusHeaders === undefined) {
          settle(this.endedWithoutStatus(session, stream, responseHeaders, streamError));
          return;
        }
        const code = Number(statusHeaders['grpc-status']);
        const details = statusMessage(statusHeaders['grpc-message']);
        const trailerMetadata = customMetadata(statusHeaders);
        if (code !== grpc.status.OK) {
          settle(answeredFailure(Number.isInteger(code) ? code : grpc.status.UNKNOWN, details, trailerMetadata));
          return;
        }
        const framed = unframe(chunks, received);
        if (typeof framed === 'string') {
          // Not counted as an answer: what etcd did cannot be read from it.
          settle(failure(grpc.status.INTERNAL, `etcdgate: ${framed}`));
          return;
        }
        const relayed = responseHeaders === undefined || responseHeaders === statusHeaders ? undefined : customMetadata(responseHeaders);
        settle({ response: framed.subarray(5), framed, headers: relayed, trailers: trailerMetadata });
      });

      stream.end(options.framed ?? frameMessage(request));
    });
  }

  /** Closes the current session gracefully: calls in flight finish, new calls are refused. */
  close(): void {
    this.closed = true;
    this.session?.close();
    this.session = undefined;
  }

  /** The status of a stream that closed without grpc-status: reset, connection loss, or a non-gRPC answer. */
  private endedWithoutStatus(
    session: http2.ClientHttp2Session,
    stream: http2.ClientHttp2Stream,
    responseHeaders: http2.IncomingHttpHeaders | undefined,
    streamError: unknown,
  ): UnaryFailure {
    if (!this.connected.has(session)) {
      return failure(grpc.status.UNAVAILABLE, `etcdgate: etcd endpoint ${this.url} not reachable (${errorCode(streamError)})`, true);
    }
    if (responseHeaders !== undefined && Number(responseHeaders[':status']) !== 200) {
      return failure(grpc.status.UNKNOWN, `etcdgate: etcd answered HTTP ${String(responseHeaders[':status'])}`);
    }
    if (!session.destroyed && stream.rstCode !== undefined && stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR) return resetStatus(stream.rstCode);
    return failure(grpc.status.UNAVAILABLE, `etcdgate: connection to etcd endpoint ${this.url} lost (${errorCode(streamError)})`);
  }

  /** The open session, or a new one. */
  private open(): http2.ClientHttp2Session {
    const existing = this.session;
    if (existing !== undefined && !existing.closed && !existing.destroyed) return existing;
    const options = this.options;
    const session = http2.connect(this.url, {
      ca: options.ca,
      ...(options.cert === null ? {} : { cert: options.cert }),
      ...(options.key === null ? {} : { key: options.key }),
      servername: this.serverName(),
      settings: { enablePush: false, initialWindowSize: STREAM_WINDOW_BYTES },
      maxSessionMemory: MAX_SESSION_MEMORY_MB,
    });
    this.session = session;
    const dialTimer = setTimeout(() => session.destroy(), options.dialTimeoutMs);
    let keepalive: NodeJS.Timeout | undefined;
    // etcd's SETTINGS frame, not the end of the TLS handshake, is the sign that it took the
    // connection: with TLS 1.3 a rejected client certificate is only reported after that.
    session.once('remoteSettings', () => {
      clearTimeout(dialTimer);
      this.connected.add(session);
      session.setLocalWindowSize(SESSION_WINDOW_BYTES);
      keepalive = setInterval(() => this.ping(session), options.keepaliveTimeMs);
      keepalive.unref();
    });
    // Errors reach each call through its stream's 'close'; the session only has to be forgotten.
    session.on('error', () => this.forget(session));
    session.on('goaway', () => this.forget(session));
    session.once('close', () => {
      clearTimeout(dialTimer);
      if (keepalive !== undefined) clearInterval(keepalive);
      this.forget(session);
    });
    // Open calls keep the process busy anyway; an idle session must not hold it open.
    session.unref();
    return session;
  }

  /**
   * SNI and the name checked on etcd's certificate: the override, else the URL's host. An
   * IP address is not sent as SNI (RFC 6066); '' leaves SNI out and the check uses the IP.
   */
  private serverName(): string {
    if (this.options.serverName !== undefined) return this.options.serverName;
    const host = new URL(this.url).hostname.replace(/^\[|\]$/gu, '');
    return isIP(host) === 0 ? host : '';
  }

  /** Drops `session` from use; calls already on it go on. */
  private forget(session: http2.ClientHttp2Session): void {
    if (this.session === session) this.session = undefined;
  }

  /** A keepalive ping: no answer in time means the connection is dead, so it is destroyed. */
  private ping(session: http2.ClientHttp2Session): void {
    const timeout = setTimeout(() => session.destroy(), this.options.keepaliveTimeoutMs);
    timeout.unref();
    const sent = session.ping((error) => {
      clearTimeout(timeout);
      if (error !== null) session.destroy();
    });
    if (!sent) clearTimeout(timeout);
  }
}

/**
 * The one framed message of a unary response (5-byte gRPC prefix, then the message), from
 * its DATA chunks; a string says what is wrong instead. A single chunk is used, not copied.
 */
function unframe(chunks: readonly Buffer[], total: number): Buffer | string {
  const body = chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks, total);
  if (body.length < 5) return 'etcd sent no response message';
  if (body[0] !== 0) return 'etcd sent a compressed response, which etcdgate did not ask for';
  const length = body.readUInt32BE(1);
  if (body.length !== 5 + length) return 'etcd sent a malformed response frame';
  return body;
}
