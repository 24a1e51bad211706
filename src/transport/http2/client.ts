/**
 * The client side of one HTTP/2 connection over TLS (etcdgate to an etcd member): dial
 * with ALPN h2, a deadline on the whole set-up (TCP, TLS, and the server's SETTINGS),
 * and keepalive PINGs that close a connection whose peer stopped answering. What runs
 * on the connection once it is up is Http2Connection's business.
 *
 * "Connected" means the server's SETTINGS frame arrived, not merely the end of the TLS
 * handshake: with TLS 1.3 a server that rejects our client certificate says so only
 * after the handshake, and a call sent before SETTINGS may never have been read.
 */
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { Http2Connection, type ConnectionError, type ConnectionHooks, type ConnectionOptions } from './connection.js';

export interface ClientSessionOptions {
  readonly host: string;
  readonly port: number;
  readonly ca: Buffer;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
  /** Name checked on the server's certificate and sent as SNI; the host when undefined. */
  readonly serverName?: string | undefined;
  readonly dialTimeoutMs: number;
  /** PING interval on an open connection, ms; 0 for none. */
  readonly keepaliveTimeMs: number;
  /** Time a PING has to be answered before the connection is closed, ms. */
  readonly keepaliveTimeoutMs: number;
  readonly connection: ConnectionOptions;
}

export interface ClientSessionHooks {
  /** The server's SETTINGS arrived: calls may be sent. */
  onReady(session: ClientSession): void;
  /** The connection is gone (also when it never became ready). */
  onClose(session: ClientSession, error: ConnectionError | undefined, why: string): void;
  /** The server sent GOAWAY: open calls below its last stream go on, new calls go elsewhere. */
  onGoaway(session: ClientSession): void;
}

export class ClientSession {
  readonly connection: Http2Connection;
  private readonly dialTimer: NodeJS.Timeout;
  private keepalive: NodeJS.Timeout | undefined;
  private closeReason = 'closed';

  constructor(
    private readonly options: ClientSessionOptions,
    private readonly hooks: ClientSessionHooks,
  ) {
    const socket = tls.connect({
      host: options.host,
      port: options.port,
      ca: options.ca,
      ...(options.cert === undefined ? {} : { cert: options.cert }),
      ...(options.key === undefined ? {} : { key: options.key }),
      ALPNProtocols: ['h2'],
      ...this.nameOptions(),
    });
    socket.setNoDelay(true);
    const connectionHooks: ConnectionHooks = {
      onRemoteSettings: () => {
        clearTimeout(this.dialTimer);
        if (this.connection.streamCount === 0) socket.unref();
        if (options.keepaliveTimeMs > 0) {
          this.keepalive = setInterval(() => this.ping(), options.keepaliveTimeMs);
          this.keepalive.unref();
        }
        hooks.onReady(this);
      },
      onGoaway: () => hooks.onGoaway(this),
      // The socket keeps the process alive while it is being set up and while a call is
      // open on it, not when idle: whoever awaits it is not ended by an empty event loop.
      onBusy: (busy) => (busy ? socket.ref() : socket.unref()),
      onClose: (error) => {
        clearTimeout(this.dialTimer);
        if (this.keepalive !== undefined) clearInterval(this.keepalive);
        hooks.onClose(this, error, error?.message ?? this.closeReason);
      },
    };
    this.connection = new Http2Connection(socket, 'client', options.connection, connectionHooks);
    socket.once('secureConnect', () => {
      if (socket.alpnProtocol !== 'h2') this.close(`server did not negotiate h2 (${String(socket.alpnProtocol)})`);
    });
    socket.on('error', (error: Error & { code?: string }) => {
      this.closeReason = error.code ?? error.message;
    });
    this.dialTimer = setTimeout(() => this.close('dial timeout'), options.dialTimeoutMs);
    this.dialTimer.unref();
  }

  /** Whether calls may be sent (SETTINGS received, no GOAWAY, not closed). */
  get usable(): boolean {
    const c = this.connection;
    return c.ready && !c.closed && !c.goawayReceived && !c.goawaySent;
  }

  /** Closes gracefully: GOAWAY, calls in flight finish. */
  shutdown(): void {
    this.connection.shutdown();
  }

  /** Closes at once; calls in flight fail as connection-lost. */
  close(reason: string): void {
    this.closeReason = reason;
    this.connection.destroy();
  }

  /**
   * SNI and the name checked on the certificate: the override, else the host. An IP
   * address is never sent as SNI (RFC 6066); the check then uses the IP.
   */
  private nameOptions(): tls.ConnectionOptions {
    const name = this.options.serverName ?? this.options.host;
    const bare = name.replace(/^\[|\]$/gu, '');
    if (isIP(bare) === 0) return { servername: bare };
    return { checkServerIdentity: (_host, cert) => tls.checkServerIdentity(bare, cert) };
  }

  private ping(): void {
    void this.connection.ping(this.options.keepaliveTimeoutMs).then((answered) => {
      if (!answered && !this.connection.closed) this.close('keepalive ping not answered');
    });
  }
}
