/**
 * The server side: turns each accepted TLS socket (ALPN h2) into an Http2Connection and
 * hands every stream the peer opens to `onStream`. It owns what spans connections: the
 * idle timeout (a connection without streams for `idleTimeoutMs` is sent GOAWAY and
 * closed), the bound on response bytes queued for peers that do not read, and the
 * graceful stop of all of them.
 *
 * Peers that do not read: each stream's queue is bounded by backpressure (its writer is
 * told to wait), but what waits on every stream of every connection together is not, so:
 * - a stream whose queued data makes no progress for `sendStallTimeoutMs` is reset
 *   (RST_STREAM ENHANCE_YOUR_CALM), which also lets its writer (the call to etcd) go;
 * - when the bytes queued on all connections pass `maxQueuedBytes`, streams are reset,
 *   the one whose queue has waited longest first, until a quarter is freed. A reader that
 *   keeps up refreshes its queue's clock with every frame it is sent, so those who stopped
 *   reading go first and go alone as long as they hold most of the bytes.
 */
import type * as net from 'node:net';
import { ENHANCE_YOUR_CALM } from './constants.js';
import { Http2Connection, type ConnectionError, type ConnectionOptions } from './connection.js';
import type { Http2Stream } from './stream.js';

export interface ServerOptions {
  readonly connection: ConnectionOptions;
  /** A connection with no open stream for this long is closed (GOAWAY NO_ERROR), ms; 0 for never. */
  readonly idleTimeoutMs: number;
  /** A stream whose queued response data makes no progress for this long is reset, ms; 0 for never. */
  readonly sendStallTimeoutMs?: number;
  /** Response bytes queued on all connections past which the longest-waiting streams are reset; 0 for no bound. */
  readonly maxQueuedBytes?: number;
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
  /** Response bytes queued on every connection (the sum of their queues). */
  private queuedTotal = 0;
  private shedScheduled = false;
  /** Streams reset because their peer did not read (stalled, or shed over the bound). */
  resetForNotReading = 0;

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
      onQueued: (delta) => this.onQueued(delta),
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

  /** Response bytes queued on all connections now. */
  get queuedBytes(): number {
    return this.queuedTotal;
  }

  private onQueued(delta: number): void {
    this.queuedTotal += delta;
    const max = this.options.maxQueuedBytes ?? 0;
    if (max <= 0 || this.queuedTotal <= max || this.shedScheduled) return;
    // Not from inside a sendData: the writer that pushed is in the middle of its work.
    this.shedScheduled = true;
    setImmediate(() => {
      this.shedScheduled = false;
      this.shed(max);
    });
  }

  /** Resets streams, the longest-waiting queue first, until the queued total is at most 3/4 of `max`. */
  private shed(max: number): void {
    if (this.queuedTotal <= max) return;
    const waiting: Http2Stream[] = [];
    for (const connection of this.open) {
      for (const stream of connection.streams.values()) if (stream.queuedBytes > 0) waiting.push(stream);
    }
    waiting.sort((a, b) => a.progressAt - b.progressAt);
    const target = (max * 3) / 4;
    for (const stream of waiting) {
      if (this.queuedTotal <= target) break;
      this.resetNotReading(stream);
    }
  }

  private resetNotReading(stream: Http2Stream): void {
    this.resetForNotReading += 1;
    stream.reset(ENHANCE_YOUR_CALM);
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
    const stallMs = this.options.sendStallTimeoutMs ?? 0;
    if (this.sweepTimer !== undefined || (idleMs <= 0 && stallMs <= 0)) return;
    const every = Math.min(idleMs > 0 ? idleMs / 2 : 5_000, stallMs > 0 ? stallMs / 4 : 5_000, 5_000);
    this.sweepTimer = setInterval(() => this.sweep(idleMs, stallMs), every);
    this.sweepTimer.unref();
  }

  /** Closes connections idle too long (noting which became idle), and resets streams whose queue has stalled. */
  private sweep(idleMs: number, stallMs: number): void {
    const now = this.now();
    for (const connection of this.open) {
      if (connection.streamCount > 0) {
        this.idle.delete(connection);
        if (stallMs > 0 && connection.queuedBytes > 0) {
          for (const stream of [...connection.streams.values()]) {
            if (stream.queuedBytes > 0 && now - stream.progressAt >= stallMs) this.resetNotReading(stream);
          }
        }
        continue;
      }
      if (idleMs <= 0) continue;
      const since = this.idle.get(connection);
      if (since === undefined) this.idle.set(connection, now);
      else if (now - since >= idleMs) connection.shutdown('idle timeout');
    }
  }
}
