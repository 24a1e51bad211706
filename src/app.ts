/**
 * The composition root: builds every part of etcdgate from one Config, wires them
 * together, and owns start, reload and stop. It composes and does nothing else; each
 * part's behaviour lives in its folder. Nothing here touches `process`: src/main.ts does.
 *
 *   client-facing TLS listener (src/tls) -> HTTP/2 server (src/transport) -> router and
 *   gate (src/proxy) -> service flows -> upstream pool (src/upstream) -> etcd
 */
import type { AddressInfo, Server as NetServer } from 'node:net';
import type * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { createAuditor } from './audit/auditor.js';
import { connectionAudit } from './audit/connection-records.js';
import { startEncryption } from './encryption/encryption.js';
import { createJsonGateway } from './gateway/index.js';
import { MemberVersions } from './health/member-versions.js';
import { LinearizableReadiness } from './health/readiness.js';
import { SYSTEM_CLOCK, type Clock } from './clock.js';
import { loadConfiguredPolicy } from './config/policy-file.js';
import { createBackupService, type BackupService } from './backup/service.js';
import type { Config } from './config/types.js';
import { watchFiles } from './config/watch-files.js';
import { METHODS } from './etcd/methods.js';
import { startAdminServer, type AdminServer } from './observability/admin-server.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createPromMetrics, reportCertificateBundle } from './observability/metrics.js';
import type { Metrics } from './observability/metrics-types.js';
import { Client, Gate } from './proxy/gate.js';
import { LeaseKeyLookups } from './proxy/lease.js';
import { AbuseLimits } from './proxy/limits.js';
import { PolicyState } from './proxy/policy-state.js';
import { RangeCache } from './proxy/range-cache.js';
import { streamRouter } from './proxy/router.js';
import { buildServices } from './proxy/services.js';
import { SHUTTING_DOWN } from './proxy/status.js';
import { createClientListener, serverTlsMaterial } from './tls/client-listener.js';
import { networkChecks, refusalAudit, revokedAudit } from './tls/listener-wiring.js';
import { assertTlsMaterial } from './tls/material-check.js';
import { Budget } from './transport/budget.js';
import { DEFAULT_CONNECTION_OPTIONS, type ConnectionOptions, type Http2Connection } from './transport/http2/connection.js';
import { NO_ERROR } from './transport/http2/constants.js';
import { Http2Server } from './transport/http2/server.js';
import { upstreamCalls } from './upstream/calls.js';
import { readUpstreamMaterial, UpstreamPool, type UpstreamMaterial } from './upstream/pool.js';
import { VERSION } from './version.js';

const WATCH_PATH = '/etcdserverpb.Watch/Watch';

export interface Gateway {
  /** The client-facing port (useful when the config asked for port 0). */
  readonly port: number;
  readonly adminPort: number;
  readonly version: string;
  /** Re-reads the policy; an invalid one keeps the old. Returns whether the new one is in force. */
  reloadPolicy(): boolean;
  /**
   * Re-reads the server certificate and key, client CA bundle and CRL (for new
   * handshakes) and the upstream CA and client certificate (for new upstream
   * connections); a broken or mismatched set keeps all the old material. Open client
   * connections are re-checked against the new CA bundle and CRL, and those that no
   * longer pass are closed. Also runs by itself when one of those files changes.
   */
  reloadTls(): boolean;
  /**
   * Re-reads the encryption file and key files (also on their change, polled every
   * second); a set that does not validate or load keeps the keys in force. True when
   * encryption is off.
   */
  reloadEncryption(): boolean;
  /** Reopens the audit file (log rotation). */
  reopenAudit(): void;
  /** Resolves once every audit record so far is written to the sink. */
  flushAudit(): Promise<void>;
  /** Backups (src/backup), when the config has a `backup` section. */
  readonly backup: BackupService | undefined;
  /** Graceful stop: no new connections, streams ended with UNAVAILABLE, unary calls finished, audit flushed. */
  stop(): Promise<void>;
}

export interface GatewayOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
}

function listen(server: NetServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.removeListener('error', reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

function reportCertificates(config: Config, metrics: Metrics): void {
  reportCertificateBundle(metrics, 'server', readFileSync(config.server.tls.cert, 'utf8'));
  reportCertificateBundle(metrics, 'client-ca', readFileSync(config.server.tls.clientCA, 'utf8'));
  reportCertificateBundle(metrics, 'upstream-ca', readFileSync(config.upstream.tls.ca, 'utf8'));
  if (config.upstream.tls.cert !== undefined) reportCertificateBundle(metrics, 'upstream-client', readFileSync(config.upstream.tls.cert, 'utf8'));
}

function sameMaterial(a: UpstreamMaterial, b: UpstreamMaterial): boolean {
  const same = (x: Buffer | null, y: Buffer | null): boolean => (x === null || y === null ? x === y : x.equals(y));
  return a.ca.equals(b.ca) && same(a.cert, b.cert) && same(a.key, b.key);
}

/** The TLS files whose change triggers a reload. */
function tlsFiles(config: Config): string[] {
  const { server, upstream } = config;
  return [server.tls.cert, server.tls.key, server.tls.clientCA, server.tls.crl, upstream.tls.ca, upstream.tls.cert, upstream.tls.key].filter(
    (file): file is string => file !== undefined,
  );
}

/**
 * Each client stream may send this much before etcdgate takes it: request messages up to
 * this size need no reservation (src/transport/grpc/server-call.ts), larger ones wait for
 * their whole length to be reserved in the request budget.
 */
const CLIENT_STREAM_WINDOW = 128 * 1024;

/** The client connections' HTTP/2 limits. */
function clientConnectionOptions(config: Config): ConnectionOptions {
  return {
    ...DEFAULT_CONNECTION_OPTIONS,
    maxConcurrentStreams: config.limits.maxStreamsPerConnection,
    streamWindow: CLIENT_STREAM_WINDOW,
  };
}

/** Starts etcdgate. Rejects (and leaves nothing running) if any part cannot start. */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  // The same check as check-config, so broken TLS files fail with their field path.
  assertTlsMaterial(config);
  const logger = options.logger ?? createLogger(config.log.level);
  const clock = options.clock ?? SYSTEM_CLOCK;
  const { metrics, registry } = createPromMetrics({ version: VERSION });
  const policy = new PolicyState(loadConfiguredPolicy(config.policy));
  metrics.policyInfo(policy.current.version, policy.current.ruleCount);
  // Encryption at rest: every key is loaded now; one that cannot be used stops the start.
  const encryption = config.encryption === undefined ? undefined : startEncryption(config.encryption, {
        metrics,
        logger,
        keyring: { openedCacheBytes: config.cache.decryptedValues.maxBytes },
      });
  const auditor = await createAuditor(config.audit, { metrics, logger, version: VERSION, policyVersion: () => policy.current.version });

  let upstreamMaterial = readUpstreamMaterial(config.upstream);
  const pool = new UpstreamPool(config.upstream, metrics, upstreamMaterial);
  const upstream = upstreamCalls(pool, config.upstream.dialTimeoutMs);
  const leaseKeys = new LeaseKeyLookups(upstream);
  const gate = new Gate({ policy, limits: new AbuseLimits(config.limits, () => clock.monotonic(), metrics), auditor, metrics, clock, logger, leaseKeys: (id) => leaseKeys.keys(id) });
  policy.onChange(() => {
    for (const stream of gate.streams) stream.revalidate?.();
  });

  const cacheConfig = config.cache.serializableRange;
  const rangeCache = cacheConfig.enabled ? new RangeCache(cacheConfig) : undefined;
  const stopRangeCache = rangeCache?.follow((onMessage, onEnd) => upstream.feed(WATCH_PATH, onMessage, onEnd)) ?? (() => undefined);
  // The cache holds plaintext answers: none may outlive the keys that opened them.
  encryption?.state.onReplace(() => rangeCache?.clear());
  // etcd's own view of its health (readiness) and of its members' versions.
  const readiness = new LinearizableReadiness(config.upstream.healthCheck, { upstream, metrics, logger });
  const memberVersions = new MemberVersions({ endpoints: config.upstream.endpoints, timeoutMs: config.upstream.dialTimeoutMs, ...config.upstream.versionCheck }, { upstream, metrics, logger });

  const services = buildServices(
    {
      gate,
      pool,
      maxSendBytes: config.server.maxSendBytes,
      maxWatcherBufferBytes: config.limits.maxWatcherBufferBytes,
      advertiseClientUrls: config.server.advertiseClientUrls,
      cache: rangeCache,
      encryption: encryption?.state,
    },
    METHODS,
  );
  // etcd's JSON gateway on the same listener (src/gateway): HTTP/1.1 sockets and non-gRPC HTTP/2 requests.
  const jsonGateway = config.gateway.enabled
    ? createJsonGateway({ gate, services, upstream, logger, maxRecvBytes: config.server.maxRecvBytes }, config.gateway)
    : undefined;
  const clients = new Map<Http2Connection, Client>();
  const bySocket = new Map<tls.TLSSocket, Http2Connection>();
  const onStream = streamRouter({
    gate,
    services,
    clients,
    limits: {
      maxRecvBytes: config.server.maxRecvBytes,
      maxSendBytes: config.server.maxSendBytes,
      readTimeoutMs: config.server.requestReadTimeoutMs,
      maxInflateRatio: config.server.maxInflateRatio,
      smallMessageBytes: CLIENT_STREAM_WINDOW,
    },
    requestBudget: new Budget(Math.max(config.limits.connectionBufferBytes, config.server.maxRecvBytes), config.limits.totalBufferBytes),
    ...(jsonGateway === undefined ? {} : { onHttpRequest: jsonGateway.serveHttp2 }),
  });
  const http2 = new Http2Server(
    {
      connection: clientConnectionOptions(config),
      idleTimeoutMs: config.limits.idleTimeoutMs,
      // Clients that do not read what they asked for: see src/transport/http2/server.ts.
      sendStallTimeoutMs: config.limits.sendStallTimeoutMs,
      maxQueuedBytes: config.limits.totalBufferBytes,
    },
    { onStream, onConnectionClosed: (connection) => clients.delete(connection) },
    () => clock.monotonic(),
  );

  // Refusals are audited with a per-source rate limit; connections re-checked on reload (src/tls/).
  const refusals = refusalAudit(config.limits, { auditor, metrics });
  // connection.open/close records: the certificate in full, once per connection.
  const connectionRecords = connectionAudit(auditor, (identity) => policy.permissionsFor(identity).roles);
  const onRevoked = revokedAudit({ auditor, metrics });
  const listener = createClientListener({
    tls: config.server.tls,
    handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
    maxConnections: config.limits.maxConnections,
    network: networkChecks(config.server),
    http1: jsonGateway !== undefined,
    onConnection: (socket, connection) => {
      metrics.connectionOpened();
      connectionRecords.opened(connection);
      const client = new Client(connection);
      // A client that did not negotiate h2 speaks HTTP/1.1 (as with etcd: Go's server decides the same way).
      if (jsonGateway !== undefined && socket.alpnProtocol !== 'h2') {
        jsonGateway.acceptHttp1(socket, client);
        return;
      }
      const http2Connection = http2.accept(socket);
      clients.set(http2Connection, client);
      bySocket.set(socket, http2Connection);
      socket.once('close', () => bySocket.delete(socket));
    },
    onClosed: (connection) => {
      metrics.connectionClosed();
      connectionRecords.closed(connection);
    },
    onRefused: refusals.onRefused,
    onRevoked: (revoked) => {
      // The connection's close record says why etcdgate closed it.
      connectionRecords.closing(revoked.connection, `certificate ${revoked.reason}`);
      onRevoked(revoked);
    },
    // A connection whose certificate no longer passes: GOAWAY, then closed; calls in flight end.
    closeConnection: (socket) => {
      const connection = bySocket.get(socket);
      if (connection === undefined) socket.destroy();
      else connection.fail(NO_ERROR, 'client certificate no longer valid');
    },
  });

  let admin: AdminServer | undefined;
  let port: number;
  try {
    port = await listen(listener.server, config.server.listen.host, config.server.listen.port);
    admin = await startAdminServer({
      host: config.admin.listen.host,
      port: config.admin.listen.port,
      registry,
      logger,
      ...(config.admin.tls === undefined ? {} : { tls: config.admin.tls }),
      readiness: () => {
        const checks = {
          listening: listener.server.listening && !gate.shuttingDown,
          policy: true,
          upstream: pool.healthy(),
          linearizable: readiness.serving,
          audit: auditor.accepting,
          // False while the audit file was deleted or replaced and is not reopened yet.
          audit_file: auditor.sinkIntact,
        };
        return { ready: Object.values(checks).every(Boolean), checks };
      },
    });
  } catch (error: unknown) {
    listener.server.close();
    refusals.limiter.stop();
    encryption?.stop();
    stopRangeCache();
    pool.close();
    http2.destroy();
    await auditor.close();
    throw error;
  }
  reportCertificates(config, metrics);
  readiness.start();
  memberVersions.start();

  // --- backups (src/backup): scheduled once listening, stopped before the pool closes.
  const backup: BackupService | undefined =
    config.backup === undefined
      ? undefined
      : createBackupService({ config: config.backup, upstream, endpoint: () => pool.pick()?.url ?? '', metrics, audit: (event) => auditor.backup(event), logger, version: VERSION });
  backup?.start().catch((error: unknown) => logger.error({ err: error }, 'backups could not start'));
  // --- end backups

  const reloadPolicy = (): boolean => {
    try {
      const next = loadConfiguredPolicy(config.policy);
      if (next.version === policy.current.version) return true;
      policy.replace(next);
      metrics.policyReload('success');
      metrics.policyInfo(next.version, next.ruleCount);
      logger.info({ version: next.version, rules: next.ruleCount }, 'policy reloaded');
      return true;
    } catch (error: unknown) {
      metrics.policyReload('failure');
      logger.error({ err: error }, 'policy reload failed; the previous policy stays in force');
      return false;
    }
  };
  const stopWatchingPolicy = config.policy.kind === 'file' ? watchFiles([config.policy.path], reloadPolicy, 0) : () => undefined;

  const reloadTls = (): boolean => {
    try {
      // Everything is read and checked before anything is swapped: all new, or all old.
      const serverMaterial = serverTlsMaterial(config.server.tls);
      const nextUpstream = readUpstreamMaterial(config.upstream);
      // Also re-checks every open connection: revoked, expired or untrusted ones are closed.
      const closed = listener.replaceMaterial(serverMaterial);
      if (!sameMaterial(nextUpstream, upstreamMaterial)) {
        pool.replaceCredentials(nextUpstream);
        upstreamMaterial = nextUpstream;
      }
      reportCertificates(config, metrics);
      metrics.tlsReload('success');
      logger.info({ connectionsClosed: closed }, 'TLS material reloaded');
      return true;
    } catch (error: unknown) {
      metrics.tlsReload('failure');
      logger.error({ err: error }, 'TLS reload failed; the previous certificates stay in use');
      return false;
    }
  };
  const stopWatchingTls = watchFiles(tlsFiles(config), reloadTls);

  logger.info({ port, adminPort: admin.port, upstream: config.upstream.endpoints, policyVersion: policy.current.version, version: VERSION }, 'etcdgate listening');

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    gate.shuttingDown = true;
    stopWatchingPolicy();
    stopWatchingTls();
    readiness.stop();
    memberVersions.stop();
    encryption?.stop();
    listener.server.close();
    jsonGateway?.close();
    for (const stream of [...gate.streams]) stream.abort(SHUTTING_DOWN);
    http2.shutdown();
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(() => {
        clearInterval(check);
        http2.destroy();
        jsonGateway?.closeAll();
        resolve();
      }, config.server.shutdownTimeoutMs);
      const check = setInterval(() => {
        if (http2.connections.size > 0) return;
        clearInterval(check);
        clearTimeout(deadline);
        resolve();
      }, 10);
    });
    jsonGateway?.closeAll();
    await backup?.stop(); // backups: a run in progress is aborted and leaves nothing
    stopRangeCache();
    pool.close();
    await admin?.close();
    refusals.limiter.stop();
    await auditor.close();
    logger.info('etcdgate stopped');
  };

  return {
    port,
    adminPort: admin.port,
    version: VERSION,
    backup,
    reloadPolicy,
    reloadTls,
    reloadEncryption: () => encryption?.reload() ?? true,
    reopenAudit: () => auditor.reopen(),
    flushAudit: () => auditor.flush(),
    stop: () => (stopping ??= stop()),
  };
}
