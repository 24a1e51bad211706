/**
 * The server side: turns each accepted TLS socket (ALPN h2) into an Http2Connection and
 * hands every stream the peer opens to `onStream`. It owns what spans connections: the
 * idle timeout (a connection without streams for `idleTimeoutMs` is sent GOAWAY and
 * closed) and the graceful stop of all of them.
 */
import type * as net from 'node:net';
import { Http2Connection, type ConnectionError, type ConnectionOptions } from './connection.js';
import type { Http2Stream } from './stream.js';

export interface ServerOptions {
  readonly connection: ConnectionOptions;
  /** A connection with no open stream for this long is closed (GOAWAY NO_ERROR), ms; 0 for never. */
  readonly idleTimeoutMs: number;
}

export interface ServerHooks {
  /** A peer opened a stream. `owner` is what accept() was given for the connection. */
  onStream(connection: Http2Connection, stream: Http2Stream, fields: string[], endStream: boolean): void;
  /** A connection ended. */
  onConnectionClosed?(connection: Http2Connection, error: ConnectionError | undefined): void;
}

export class Http2Server {
  private readonly open = new Set<Http2Connection>();
  private readonly idle = new Map<Http2Connection, number>();
  private sweepTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly options: ServerOptions,
    private readonly hooks: ServerHooks,
    private readonly now: () => number = () => performance.now(),
  ) {}

  /** Serves HTTP/2 on a socket whose TLS handshake is done. */
  accept(socket: net.Socket): Http2Connection {
    socket.setNoDelay(true);
    const connection: Http2Connection = new Http2Connection(socket, 'server', this.options.connection, {
      onStream: (stream, fields, endStream) => {
        this.idle.delete(connection);
        this.hooks.onStream(connection, stream, fields, endStream);
      },
      onClose: (error) => {
        this.open.delete(connection);
        this.idle.delete(connection);
        this.hooks.onConnectionClosed?.(connection, error);
      },
    }, this.now);
    this.open.add(connection);
    this.idle.set(connection, this.now());
    this.startSweeping();
    return connection;
  }

  /** Connections being served. */
  get connections(): ReadonlySet<Http2Connection> {
    return this.open;
  }

  /** GOAWAY to every connection: no new streams; each closes once its streams have ended. */
  shutdown(): void {
    if (this.sweepTimer !== undefined) clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    for (const connection of this.open) connection.shutdown('server shutting down');
  }

  /** Closes every connection at once. */
  destroy(): void {
    this.shutdown();
    for (const connection of [...this.open]) connection.destroy();
  }

  private startSweeping(): void {
    const idleMs = this.options.idleTimeoutMs;
    if (this.sweepTimer !== undefined || idleMs <= 0) return;
    this.sweepTimer = setInterval(() => this.sweep(idleMs), Math.min(idleMs / 2, 5_000));
    this.sweepTimer.unref();
  }

  /** Notes which connections became idle, and closes those idle too long. */
  private sweep(idleMs: number): void {
    const now = this.now();
    for (const connection of this.open) {
      if (connection.streamCount > 0) {
        this.idle.delete(connection);
        continue;
      }
      const since = this.idle.get(connection);
      if (since === undefined) this.idle.set(connection, now);
      else if (now - since >= idleMs) connection.shutdown('idle timeout');
    }
  }
}
