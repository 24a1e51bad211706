/**
 * The typed, validated and deep-frozen configuration. Produced only by loadConfig()
 * (src/config/load.ts); every other module receives a Config and never reads YAML,
 * the environment or argv itself. Paths are resolved relative to the config file.
 */

export interface ServerTlsConfig {
  readonly cert: string;
  readonly key: string;
  /** CA bundle that client certificates must chain to. */
  readonly clientCA: string;
  /** Optional CRL (PEM) checked at the handshake. */
  readonly crl?: string;
  /** Minimum TLS version; default TLSv1.2. */
  readonly minVersion: 'TLSv1.2' | 'TLSv1.3';
}

export interface ServerConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** URLs MemberList answers with, so clients that sync endpoints keep using the proxy. */
  readonly advertiseClientUrls: readonly string[];
  readonly tls: ServerTlsConfig;
  /** Largest request message accepted, bytes (default 10 MiB; etcd's is 1.5 MiB). */
  readonly maxRecvBytes: number;
  /** Largest response message sent, bytes (default 2^31 - 1, gRPC's ceiling; -1 for none). */
  readonly maxSendBytes: number;
  /** Bound on graceful shutdown, ms (default 10000). */
  readonly shutdownTimeoutMs: number;
  /** Time a request message has to arrive once started (a unary call: its whole request), ms (default 5000). */
  readonly requestReadTimeoutMs: number;
  /** Most a compressed request may inflate, as a multiple of its compressed size (default 100). */
  readonly maxInflateRatio: number;
}

export interface UpstreamConfig {
  /** https:// URLs of etcd members; tried in order, failing over when one is down. */
  readonly endpoints: readonly string[];
  readonly tls: {
    readonly ca: string;
    readonly cert?: string;
    readonly key?: string;
    /** Override the TLS server name checked on the etcd certificate. */
    readonly serverName?: string;
  };
  /** Keepalive ping interval to etcd, ms (default 30000; etcd refuses pings more often than 5 s). */
  readonly keepaliveTimeMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Timeout for connection establishment and for etcdgate's own lookups (e.g. lease keys), ms. */
  readonly dialTimeoutMs: number;
  /** Largest response accepted from etcd, bytes (default unlimited). */
  readonly maxRecvBytes: number;
}

export interface AdminConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** Optional TLS for the admin listener (plain HTTP when absent). */
  readonly tls?: { readonly cert: string; readonly key: string };
}

export type AuditSinkConfig =
  | { readonly kind: 'stdout' }
  /** `file:/path/audit.jsonl`: appended, mode 0600, reopened on SIGHUP/SIGUSR1. */
  | { readonly kind: 'file'; readonly path: string }
  /** `syslog+tls://host:port`: RFC 5424 over TCP+TLS with octet-counted framing. */
  | { readonly kind: 'syslog'; readonly host: string; readonly port: number };

/** Kubernetes-style audit levels: `none` writes nothing, `metadata` writes the record without values (there is never a value). */
export type AuditLevel = 'none' | 'metadata';

export interface AuditConfig {
  readonly sink: AuditSinkConfig;
  /** What to do when the sink cannot take records: refuse new calls (default) or run unaudited. */
  readonly onFailure: 'deny' | 'allow';
  /** Level per method group; default `metadata` for all. */
  readonly level: {
    readonly read: AuditLevel;
    readonly write: AuditLevel;
    readonly admin: AuditLevel;
    readonly auth: AuditLevel;
  };
  /** syslog+tls only: CA that the syslog server's certificate must chain to, optional client cert/key. */
  readonly syslog?: { readonly ca: string; readonly cert?: string; readonly key?: string; readonly appName: string };
  /** Records buffered in memory while the sink is slow or down, before onFailure applies (default 100000). */
  readonly bufferRecords: number;
}

/**
 * Abuse limits, each with a safe default. A value of 0 turns off the limits that say so;
 * the others always apply.
 */
export interface LimitsConfig {
  /** Open client sockets, handshaking or verified (default 10000; 0 = unlimited). */
  readonly maxConnections: number;
  /** Concurrent HTTP/2 streams (calls) per client connection (default 1000). */
  readonly maxStreamsPerConnection: number;
  /** Open watchers per identity (certificate fingerprint) across its streams (default 10000; 0 = unlimited). */
  readonly maxWatchersPerIdentity: number;
  /** Sustained requests per second per identity, token bucket (default 10000; 0 = no rate limit). */
  readonly requestsPerSecond: number;
  /** Token bucket size: requests an identity may send at once after being idle (default 20000). */
  readonly burst: number;
  /** Time a client gets to complete its TLS handshake, ms (default 10000). */
  readonly handshakeTimeoutMs: number;
  /** Bytes a watch stream may leave unread by its client before its watchers are cancelled (default 16 MiB). */
  readonly maxWatcherBufferBytes: number;
  /** A client connection with no open stream for this long is closed (GOAWAY), ms (default 300000; 0 = never). */
  readonly idleTimeoutMs: number;
  /** Request bytes one client connection may make etcdgate hold (its HTTP/2 receive window), default 16 MiB, at least maxRecvBytes. */
  readonly connectionBufferBytes: number;
  /**
   * Request bytes all connections together may hold while being inflated, and, counted
   * apart, response bytes queued for clients that are not reading (default 256 MiB): past
   * it the streams that have waited longest are reset.
   */
  readonly totalBufferBytes: number;
  /** A stream whose queued response makes no progress for this long (its client is not reading) is reset, ms (default 30000; 0 = never). */
  readonly sendStallTimeoutMs: number;
}

/** Optional response caches; all off by default. */
export interface CacheConfig {
  /**
   * Answers to serializable Range requests, keyed by the exact request bytes, served only
   * after the caller's policy allowed the request; invalidated by writes etcdgate
   * forwards and by an upstream watch, and never older than maxStalenessMs.
   */
  readonly serializableRange: {
    readonly enabled: boolean;
    /** Entries kept, least recently used evicted first (default 10000). */
    readonly maxEntries: number;
    /** Age after which an entry is not served, ms (default 1000). */
    readonly maxStalenessMs: number;
  };
}

export interface LogConfig {
  readonly level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export interface Config {
  /** Absolute path of the file this config was read from ("" for an in-memory config). */
  readonly source: string;
  readonly server: ServerConfig;
  readonly upstream: UpstreamConfig;
  readonly admin: AdminConfig;
  readonly audit: AuditConfig;
  readonly log: LogConfig;
  readonly limits: LimitsConfig;
  readonly cache: CacheConfig;
  /**
   * The policy (required): a file path (absolute after loading, reloadable) or the policy
   * document inline. Its contents are validated by src/policy, not here.
   */
  readonly policy:
    | { readonly kind: 'file'; readonly path: string }
    | { readonly kind: 'inline'; readonly document: unknown };
}
