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
  /** Largest response message sent, bytes (default 2^31 - 1, gRPC's ceiling; -1 for none). */
  readonly maxSendBytes: number;
  /** Bound on graceful shutdown, ms (default 10000). */
  readonly shutdownTimeoutMs: number;
  /** Time a request message has to arrive once started (a unary call: its whole request), ms (default 5000). */
  readonly requestReadTimeoutMs: number;
  /** Most a compressed request may inflate, as a multiple of its compressed size (default 100). */
  readonly maxInflateRatio: number;
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
  /**
   * The readiness check (src/health/readiness.ts): a linearizable read of the key
   * `health` every intervalMs, given timeoutMs; /readyz follows its last result.
   */
  readonly healthCheck: { readonly intervalMs: number; readonly timeoutMs: number };
  /**
   * Member versions (src/health/member-versions.ts): Maintenance.Status on every endpoint
   * every intervalMs; a member below its line's minimum is flagged.
   */
  readonly versionCheck: { readonly intervalMs: number; readonly minimumVersions: readonly string[] };
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
  /** Refusal audit records (handshakes, connections) per source per minute (default 60; 0 = no limit). */
  readonly refusalRecordsPerMinute: number;
  /** Refusal records a source may produce at once (default 20). */
  readonly refusalRecordsBurst: number;
  /** Refusal records per minute over all sources (default 600). */
  readonly refusalRecordsTotalPerMinute: number;
  /** A stream whose queued response makes no progress for this long (its client is not reading) is reset, ms (default 30000; 0 = never). */
  readonly sendStallTimeoutMs: number;
  /**
   * Unary calls reading a key range (a range_end: Range, or Txn and DeleteRange with
   * such a read) that one identity may have at etcd at once; more wait in arrival
   * order (default 16; 0 = unlimited).
   */
  readonly maxRangeReadsPerIdentity: number;
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
  /**
   * Values opened under encrypted prefixes, remembered with the exact stored bytes they
   * were opened from (src/encryption/keyring.ts): a re-read of an unchanged value skips
   * the decipher. Emptied when the keys reload.
   */
  readonly decryptedValues: {
    /** Bytes remembered, stored form and plaintext counted (default 16 MiB; 0 = off). */
    readonly maxBytes: number;
  };
}

/** etcd's JSON/HTTP gateway on the client listener (src/gateway); see config/README.md. */
export interface GatewayConfig {
  /** Serve HTTP/1.1 clients and non-gRPC HTTP/2 requests (default true, as etcd). */
  readonly enabled: boolean;
  /** Time an HTTP/1.1 client gets to send a request's headers, from connect or the previous answer, ms (default 10000). */
  readonly headersTimeoutMs: number;
  /** Time a client gets to send a request body once its headers are in, ms (default 30000). */
  readonly bodyTimeoutMs: number;
  /** An idle keep-alive HTTP/1.1 connection is closed after this long, ms (default 120000). */
  readonly idleTimeoutMs: number;
  /** Largest HTTP/1.1 request head (request line and headers), bytes (default 16384). */
  readonly maxHeaderBytes: number;
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

/** When scheduled backups run: a cron expression (croner syntax) or a fixed interval. */
export type BackupSchedule =
  /** 5 fields (minute..weekday) or 6 (with seconds first), evaluated in `timezone` (default UTC). */
  | { readonly kind: 'cron'; readonly expression: string; readonly timezone: string }
  /** Every `seconds`, aligned to the Unix epoch so every instance of a fleet computes the same times. */
  | { readonly kind: 'interval'; readonly seconds: number };

/** Where backups are stored; `name` labels metrics, audit records and `backup list`. */
export type BackupDestinationConfig =
  /** A local (or mounted network) directory; must exist and be writable at start. */
  | { readonly kind: 'directory'; readonly name: string; readonly path: string }
  /**
   * S3-compatible object storage. Credentials come from the AWS SDK's standard chain
   * (environment, shared files, instance roles), never from this file.
   */
  | {
      readonly kind: 's3';
      readonly name: string;
      readonly bucket: string;
      /** Key prefix, "" or ending in "/". */
      readonly prefix: string;
      /** Endpoint URL of a non-AWS service (e.g. https://s3.example:9000). */
      readonly endpoint?: string;
      readonly region: string;
      /** Path-style URLs (bucket in the path), which most non-AWS services need. */
      readonly forcePathStyle: boolean;
      /** Multipart part size, bytes (default 16 MiB; S3's minimum is 5 MiB). */
      readonly partSizeBytes: number;
    };

/** The optional `backup` section: scheduled, verified, optionally encrypted etcd snapshots. */
export interface BackupConfig {
  /** Whether scheduled runs happen (`etcdgate backup now|list|verify` work either way). */
  readonly enabled: boolean;
  /** Required when enabled. */
  readonly schedule?: BackupSchedule;
  readonly destinations: readonly BackupDestinationConfig[];
  readonly retention: {
    /** The newest N backups are always kept (at least 1). */
    readonly keepLast: number;
    /** Besides those, the newest backup of each of the last D days (UTC), 0 = none. */
    readonly keepDailyDays: number;
    /** And the newest of each of the last W ISO weeks (UTC), 0 = none. */
    readonly keepWeeklyWeeks: number;
  };
  /** age recipients (`age1...`) every backup is encrypted to; absent = stored in plain text. */
  readonly encryption?: { readonly recipients: readonly string[] };
  /** Where a snapshot is written before it goes to the destinations (default: the first directory destination). */
  readonly stagingDir: string;
  /** Bound on one run, seconds (default 21600). */
  readonly timeoutSeconds: number;
  /** Age of the last success past which EtcdgateBackupTooOld fires, seconds (default twice the longest gap between runs). */
  readonly maxAgeSeconds: number;
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
  readonly gateway: GatewayConfig;
  /** Encryption at rest; undefined when the `encryption` section is absent. */
  readonly encryption?: EncryptionConfig;
  /** Absent when the config has no `backup` section. */
  readonly backup?: BackupConfig;
  /**
   * The policy (required): a file path (absolute after loading, reloadable) or the policy
   * document inline. Its contents are validated by src/policy, not here.
   */
  readonly policy:
    | { readonly kind: 'file'; readonly path: string }
    | { readonly kind: 'inline'; readonly document: unknown };
}
