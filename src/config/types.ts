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

/** `server.proxyProtocol`: PROXY protocol v1/v2 from these load balancers only. */
export interface ProxyProtocolConfig {
  /** CIDRs of the balancers: a connection from one must start with a PROXY header, and its client address is believed. */
  readonly trustedFrom: readonly string[];
  /** Time a balancer has to send the whole header, ms (default 3000). */
  readonly headerTimeoutMs: number;
}

export interface ServerConfig {
  readonly listen: { readonly host: string; readonly port: number };
  /** URLs MemberList answers with, so clients that sync endpoints keep using the proxy. */
  readonly advertiseClientUrls: readonly string[];
  readonly tls: ServerTlsConfig;
  /** Largest request message accepted, bytes (default 10 MiB; etcd's is 1.5 MiB). */
  readonly maxRecvBytes: number;
  /** Largest response message sent, bytes (default unlimited = Number.MAX_SAFE_INTEGER -> -1 to grpc). */
  readonly maxSendBytes: number;
  /** Bound on graceful shutdown, ms (default 10000). */
  readonly shutdownTimeoutMs: number;
  /** CIDRs client connections may come from (checked at accept, before TLS); absent: any source. */
  readonly allowedSources?: readonly string[];
  /** PROXY protocol from trusted load balancers; absent: off. */
  readonly proxyProtocol?: ProxyProtocolConfig;
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

/** The method groups audit levels are set per (see src/audit/auditor.ts auditGroup). */
export type AuditGroupName = 'read' | 'write' | 'admin' | 'auth';

/** A record's event.outcome, as audit rules match it. */
export type AuditOutcomeName = 'success' | 'failure' | 'unknown';

/** A key or a key prefix an audit rule names (text, as UTF-8 bytes). */
export type AuditKeySelector = { readonly key: string } | { readonly prefix: string };

/**
 * One `audit.rules` entry: the level of the records it matches. Every field given must
 * hold; a list holds when any of its entries does. Compiled by src/audit/audit-rules.ts.
 */
export interface AuditRuleConfig {
  readonly level: AuditLevel;
  /** Identity selectors, as a policy binding's `match` (field -> glob patterns). */
  readonly match?: Readonly<Record<string, readonly string[]>>;
  /** The caller holds one of these roles (under the policy in force). */
  readonly roles?: readonly string[];
  /** etcd method names, e.g. Range, LeaseKeepAlive. */
  readonly methods?: readonly string[];
  readonly groups?: readonly AuditGroupName[];
  /** `none`: every key the request touches lies inside; `metadata`: any one does. */
  readonly keys?: readonly AuditKeySelector[];
  readonly outcomes?: readonly AuditOutcomeName[];
}

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
  /** Ordered rules, first match wins; records no rule matches follow `level`. Denials are always written. */
  readonly rules?: readonly AuditRuleConfig[];
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
  /** Refusal audit records (handshakes, connections) per source per minute (default 60; 0 = no limit). */
  readonly refusalRecordsPerMinute: number;
  /** Refusal records a source may produce at once (default 20). */
  readonly refusalRecordsBurst: number;
  /** Refusal records per minute over all sources (default 600). */
  readonly refusalRecordsTotalPerMinute: number;
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

/** One key of an encrypting provider: its name (written into every value it encrypts) and the file holding it. */
export interface EncryptionKeyConfig {
  readonly name: string;
  /** Absolute path of the key file (base64 of 32 bytes, mode 600 or 400). */
  readonly file: string;
}

/** The providers, as in Kubernetes' EncryptionConfiguration. */
export type EncryptionProviderKind = 'aesgcm' | 'secretbox' | 'identity';

/** One provider of a resource: an AEAD with its keys (the first encrypts), or identity (plaintext). */
export type EncryptionProviderConfig =
  | { readonly kind: 'aesgcm' | 'secretbox'; readonly keys: readonly EncryptionKeyConfig[] }
  | { readonly kind: 'identity' };

/**
 * A set of key ranges whose values are encrypted, with its ordered providers: the first
 * one writes (identity first = writes stay plaintext), every one reads, selected by the
 * stored value's header.
 */
export interface EncryptionResourceConfig {
  /** Unique name, used in metrics and status output. */
  readonly name: string;
  /** Key prefixes (as UTF-8 bytes); each stands for [P, prefixEnd(P)). */
  readonly prefixes: readonly string[];
  /** Explicit half-open ranges [start, end) (UTF-8 bytes). */
  readonly ranges: readonly { readonly start: string; readonly end: string }[];
  readonly providers: readonly EncryptionProviderConfig[];
}

/** Encryption at rest of values under chosen key ranges (src/encryption); absent = off. */
export interface EncryptionConfig {
  /** The file the resources were read from (watched and reloaded), or undefined when they are inline. */
  readonly file?: string;
  readonly resources: readonly EncryptionResourceConfig[];
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
  /** Encryption at rest; undefined when the `encryption` section is absent. */
  readonly encryption?: EncryptionConfig;
  /**
   * The policy (required): a file path (absolute after loading, reloadable) or the policy
   * document inline. Its contents are validated by src/policy, not here.
   */
  readonly policy:
    | { readonly kind: 'file'; readonly path: string }
    | { readonly kind: 'inline'; readonly document: unknown };
}
