/**
 * The composition root: builds every part of etcdgate from one Config, wires them
 * together, and owns start, reload and stop. Nothing here touches `process` (argv,
 * signals, exit): src/main.ts does that.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import type { AddressInfo, Server as NetServer } from 'node:net';
import * as grpc from '@grpc/grpc-js';
import { createAuditor } from './audit/auditor.js';
import { connectionAudit } from './audit/connection-records.js';
import type { Config } from './config/types.js';
import { startAdminServer, type AdminServer } from './observability/admin-server.js';
import { createLogger, type Logger } from './observability/logger.js';
import { createPromMetrics, reportCertificateBundle } from './observability/metrics.js';
import { loadConfiguredPolicy } from './policy/load-file.js';
import type { Connection } from './tls/client-listener.js';
import { createClientListener, serverTlsMaterial } from './tls/client-listener.js';
import { goawayThenClose, networkChecks, refusalAudit, revokedAudit } from './tls/listener-wiring.js';
import type { OpenStream, ProxyContext } from './proxy/context.js';
import { passThrough } from './proxy/bidi.js';
import { PolicyState } from './proxy/policy-state.js';
import { RangeCache } from './proxy/range-cache.js';
import { createGrpcServer } from './proxy/server.js';
import { routeStreams } from './proxy/stream-router.js';
import { findInjectedHttp2Server } from './proxy/transport-refusals.js';
import { startEncryption } from './encryption/encryption.js';
import { METHODS } from './etcd/methods.js';
import { SHUTTING_DOWN } from './proxy/status.js';
import { AbuseLimits } from './proxy/limits.js';
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
   * handshakes) and the upstream CA and client certificate (for new upstream calls); a
   * broken or mismatched set keeps all the old material. Open client connections are
   * re-checked against the new CA bundle and CRL, and those that no longer pass are
   * closed. Also runs by itself when one of those files changes (polled every second).
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
  /** Graceful stop: no new connections, streams ended with UNAVAILABLE, unary calls finished, audit flushed. */
  stop(): Promise<void>;
}

export interface GatewayOptions {
  readonly logger?: Logger;
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

function reportCertificates(config: Config, metrics: ReturnType<typeof createPromMetrics>['metrics']): void {
  reportCertificateBundle(metrics, 'server', readFileSync(config.server.tls.cert, 'utf8'));
  reportCertificateBundle(metrics, 'client-ca', readFileSync(config.server.tls.clientCA, 'utf8'));
  reportCertificateBundle(metrics, 'upstream-ca', readFileSync(config.upstream.tls.ca, 'utf8'));
  if (config.upstream.tls.cert !== undefined) reportCertificateBundle(metrics, 'upstream-client', readFileSync(config.upstream.tls.cert, 'utf8'));
}

function sameMaterial(a: UpstreamMaterial, b: UpstreamMaterial): boolean {
  const same = (x: Buffer | null, y: Buffer | null): boolean => (x === null || y === null ? x === y : x.equals(y));
  return a.ca.equals(b.ca) && same(a.cert, b.cert) && same(a.key, b.key);
}

/** Files whose change triggers a TLS reload: polled, so a rename-replace (how certificate tools write) is seen too. */
function tlsFiles(config: Config): string[] {
  const { server, upstream } = config;
  const files = [server.tls.cert, server.tls.key, server.tls.clientCA, server.tls.crl, upstream.tls.ca, upstream.tls.cert, upstream.tls.key];
  return [...new Set(files.filter((file): file is string => file !== undefined))];
}

/** How long after a change the reload runs, so a certificate and its key written together are read together. */
const TLS_SETTLE_MS = 250;

/** Watches the TLS files and calls `reload` once things settle after a change; returns the un-watch function. */
function watchTlsFiles(config: Config, reload: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  const onChange = (current: Stats): void => {
    // A file replaced by rename is briefly absent: wait for the new one to appear.
    if (current.nlink === 0 && current.ino === 0) return;
    clearTimeout(timer);
    timer = setTimeout(reload, TLS_SETTLE_MS);
    timer.unref();
  };
  const files = tlsFiles(config);
  for (const file of files) watchFile(file, { interval: 1000, persistent: false }, onChange);
  return () => {
    clearTimeout(timer);
    for (const file of files) unwatchFile(file, onChange);
  };
}

/** Starts etcdgate. Rejects (and leaves nothing running) if any part cannot start. */
export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<Gateway> {
  const logger = options.logger ?? createLogger(config.log.level);
  const { metrics, registry } = createPromMetrics({ version: VERSION });
  const policy = new PolicyState(loadConfiguredPolicy(config.policy));
  metrics.policyInfo(policy.current.version, policy.current.ruleCount);
  // Encryption at rest: every key is loaded now; one that cannot be used stops the start.
  const encryption = config.encryption === undefined ? undefined : startEncryption(config.encryption, { metrics, logger });
  const auditor = await createAuditor(config.audit, { metrics, logger, version: VERSION, policyVersion: () => policy.current.version });
  let upstreamMaterial: UpstreamMaterial = readUpstreamMaterial(config.upstream);
  const pool = new UpstreamPool(config.upstream, metrics, upstreamMaterial);
  const connections = new Map<string, Connection>();
  const streams = new Set<OpenStream>();
  const cacheConfig = config.cache.serializableRange;
  const rangeCache = cacheConfig.enabled ? new RangeCache(cacheConfig) : undefined;
  const stopRangeCache =
    rangeCache?.follow(() => pool.pick()?.client.makeBidiStreamRequest(WATCH_PATH, passThrough, passThrough, new grpc.Metadata())) ?? (() => undefined);
  const context: ProxyContext = {
    pool,
    policy,
    auditor,
    metrics,
    logger,
    advertiseClientUrls: config.server.advertiseClientUrls,
    connections,
    streams,
    state: { shuttingDown: false },
    upstream: upstreamCalls(pool, config.upstream.dialTimeoutMs),
    limits: new AbuseLimits(config.limits),
    ...(rangeCache === undefined ? {} : { rangeCache }),
    ...(encryption === undefined ? {} : { encryption: encryption.state }),
  };
  // The cache holds plaintext answers: none may outlive the keys that opened them.
  encryption?.state.onReplace(() => rangeCache?.clear());
  policy.onChange(() => {
    for (const stream of streams) stream.revalidate?.();
  });

  const grpcServer = createGrpcServer(context, config.server, config.limits);
  const injector = grpcServer.createConnectionInjector(grpc.ServerCredentials.createInsecure());
  const injectedHttp2 = findInjectedHttp2Server(grpcServer);
  // Without it unary calls would have no handler: refuse to start rather than serve half.
  if (injectedHttp2 === undefined) throw new Error('this grpc-js version is not supported: its HTTP/2 server for injected connections was not found');
  routeStreams(injectedHttp2, context, METHODS, config.server);
  // [audit] connection.open/close records: the certificate in full, once per connection.
  const connectionRecords = connectionAudit(auditor, (identity) => policy.permissionsFor(identity).roles);
  // net: refusals audited with a per-source rate limit; connections re-checked on reload (src/tls/).
  const refusals = refusalAudit(config.limits, { auditor, metrics });
  const onRevoked = revokedAudit({ auditor, metrics });
  const listener = createClientListener({
    tls: config.server.tls,
    handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
    maxConnections: config.limits.maxConnections,
    network: networkChecks(config.server),
    onConnection: (socket, connection) => {
      // The key is what grpc-js's call.getPeer() prints for this socket.
      connections.set(connection.peerKey, connection);
      metrics.connectionOpened();
      connectionRecords.opened(connection);
      injector.injectConnection(socket);
    },
    onClosed: (connection) => {
      connections.delete(connection.peerKey);
      metrics.connectionClosed();
      connectionRecords.closed(connection);
    },
    onRefused: refusals.onRefused,
    onRevoked: (revoked) => {
      // [audit] the connection's close record says why etcdgate closed it.
      connectionRecords.closing(revoked.connection, `certificate ${revoked.reason}`);
      onRevoked(revoked);
    },
    closeConnection: goawayThenClose(injectedHttp2).close,
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
        // audit_file: false while the audit file was deleted or replaced and is not reopened yet.
        const checks = { listening: listener.server.listening && !context.state.shuttingDown, policy: true, upstream: pool.healthy(), audit: auditor.accepting, audit_file: auditor.sinkIntact };
        return { ready: Object.values(checks).every(Boolean), checks };
      },
    });
  } catch (error: unknown) {
    listener.server.close();
    refusals.limiter.stop();
    encryption?.stop();
    stopRangeCache();
    pool.close();
    grpcServer.forceShutdown();
    await auditor.close();
    throw error;
  }
  reportCertificates(config, metrics);

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
  const policyFile = config.policy.kind === 'file' ? config.policy.path : undefined;
  const onPolicyFileChange = (): void => {
    reloadPolicy();
  };
  if (policyFile !== undefined) watchFile(policyFile, { interval: 1000, persistent: false }, onPolicyFileChange);

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
  const stopWatchingTls = watchTlsFiles(config, reloadTls);

  logger.info({ port, adminPort: admin.port, upstream: config.upstream.endpoints, policyVersion: policy.current.version, version: VERSION }, 'etcdgate listening');

  let stopping: Promise<void> | undefined;
  const stop = async (): Promise<void> => {
    context.state.shuttingDown = true;
    if (policyFile !== undefined) unwatchFile(policyFile, onPolicyFileChange);
    stopWatchingTls();
    encryption?.stop();
    listener.server.close();
    for (const stream of [...streams]) stream.abort(SHUTTING_DOWN);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        grpcServer.forceShutdown();
        resolve();
      }, config.server.shutdownTimeoutMs);
      grpcServer.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
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
    reloadPolicy,
    reloadTls,
    reloadEncryption: () => encryption?.reload() ?? true,
    reopenAudit: () => auditor.reopen(),
    flushAudit: () => auditor.flush(),
    stop: () => (stopping ??= stop()),
  };
}
