/**
 * The composition root: builds every part of etcdgate from one Config, wires them
 * together, and owns start, reload and stop. It composes and does nothing else; each
 * part's behaviour lives in its folder. Nothing here touches `process`: src/main.ts does.
 *
 *   client-facing TLS listener (src/tls) -> HTTP/2 server (src/transport) -> router and
 *   gate (src/proxy) -> service flows -> upstream pool (src/upstream) -> etcd
 */
import type { AddressInfo } from 'node:net';
import type * as tls from 'node:tls';
import { readFileSync } from 'node:fs';
import { createAuditor } from './audit/auditor.js';
import { SYSTEM_CLOCK, type Clock } from './clock.js';
import { loadConfiguredPolicy } from './config/policy-file.js';
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
import { createClientListener, serverContextOptions } from './tls/client-listener.js';
import { Budget } from './transport/budget.js';
import { DEFAULT_CONNECTION_OPTIONS, type ConnectionOptions, type Http2Connection } from './transport/http2/connection.js';
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
   * connections); a broken or mismatched set keeps all the old material. Also runs by
   * itself when one of those files changes (polled every second).
   */
  reloadTls(): boolean;
  /** Reopens the audit file (log rotation). */
  reopenAudit(): void;
  /** Resolves once every audit record so far is written to the sink. */
  flushAudit(): Promise<void>;
  /** Graceful stop: no new connections, streams ended with UNAVAILABLE, unary calls finished, audit flushed. */
  stop(): Promise<void>;
}

export interface GatewayOptions {
  readonly logger?: Logger;
  readonly clock?: Clock;
}

function listen(server: tls.Server, host: string, port: number): Promise<number> {
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
  const logger = options.logger ?? createLogger(config.log.level);
  const clock = options.clock ?? SYSTEM_CLOCK;
  const { metrics, registry } = createPromMetrics({ version: VERSION });
  const policy = new PolicyState(loadConfiguredPolicy(config.policy));
  metrics.policyInfo(policy.current.version, policy.current.ruleCount);
  const auditor = await createAuditor(config.audit, { metrics, logger, version: VERSION, policyVersion: () => policy.current.version });

  let upstreamMaterial = readUpstreamMaterial(config.upstream);
  const pool = new UpstreamPool(config.upstream, metrics, upstreamMaterial);
  const upstream = upstreamCalls(pool, config.upstream.dialTimeoutMs);
  const leaseKeys = new LeaseKeyLookups(upstream);
  const gate = new Gate({ policy, limits: new AbuseLimits(config.limits), auditor, metrics, clock, logger, leaseKeys: (id) => leaseKeys.keys(id) });
  policy.onChange(() => {
    for (const stream of gate.streams) stream.revalidate?.();
  });

  const cacheConfig = config.cache.serializableRange;
  const rangeCache = cacheConfig.enabled ? new RangeCache(cacheConfig) : undefined;
  const stopRangeCache = rangeCache?.follow((onMessage, onEnd) => upstream.feed(WATCH_PATH, onMessage, onEnd)) ?? (() => undefined);

  const services = buildServices(
    { gate, pool, maxSendBytes: config.server.maxSendBytes, maxWatcherBufferBytes: config.limits.maxWatcherBufferBytes, advertiseClientUrls: config.server.advertiseClientUrls, cache: rangeCache },
    METHODS,
  );
  const clients = new Map<Http2Connection, Client>();
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

  const listener = createClientListener({
    tls: config.server.tls,
    handshakeTimeoutMs: config.limits.handshakeTimeoutMs,
    maxConnections: config.limits.maxConnections,
    onConnection: (socket, connection) => {
      metrics.connectionOpened();
      clients.set(http2.accept(socket), new Client(connection));
    },
    onClosed: () => metrics.connectionClosed(),
    onRefused: (refused) => {
      metrics.handshakeRefused(refused.reason);
      auditor.handshakeRefused({ start: new Date(clock.now()), ...refused });
    },
  });

  let admin: AdminServer | undefined;
  let port: number;
  try {
    port = await listen(listener, config.server.listen.host, config.server.listen.port);
    admin = await startAdminServer({
      host: config.admin.listen.host,
      port: config.admin.listen.port,
      registry,
      logger,
      ...(config.admin.tls === undefined ? {} : { tls: config.admin.tls }),
      readiness: () => {
        const checks = { listening: listener.listening && !gate.shuttingDown, policy: true, upstream: pool.healthy(), audit: auditor.accepting };
        return { ready: Object.values(checks).every(Boolean), checks };
      },
    });
  } catch (error: unknown) {
    listener.close();
    stopRangeCache();
    pool.close();
    http2.destroy();
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
  const stopWatchingPolicy = config.policy.kind === 'file' ? watchFiles([config.policy.path], reloadPolicy, 0) : () => undefined;

  const reloadTls = (): boolean => {
    try {
      // Everything is read and checked before anything is swapped: all new, or all old.
      const serverOptions = serverContextOptions(config.server.tls);
      const nextUpstream = readUpstreamMaterial(config.upstream);
      listener.setSecureContext(serverOptions);
      if (!sameMaterial(nextUpstream, upstreamMaterial)) {
        pool.replaceCredentials(nextUpstream);
        upstreamMaterial = nextUpstream;
      }
      reportCertificates(config, metrics);
      metrics.tlsReload('success');
      logger.info('TLS material reloaded');
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
    listener.close();
    for (const stream of [...gate.streams]) stream.abort(SHUTTING_DOWN);
    http2.shutdown();
    await new Promise<void>((resolve) => {
      const deadline = setTimeout(() => {
        clearInterval(check);
        http2.destroy();
        resolve();
      }, config.server.shutdownTimeoutMs);
      const check = setInterval(() => {
        if (http2.connections.size > 0) return;
        clearInterval(check);
        clearTimeout(deadline);
        resolve();
      }, 10);
    });
    stopRangeCache();
    pool.close();
    await admin?.close();
    await auditor.close();
    logger.info('etcdgate stopped');
  };

  return {
    port,
    adminPort: admin.port,
    version: VERSION,
    reloadPolicy,
    reloadTls,
    reopenAudit: () => auditor.reopen(),
    flushAudit: () => auditor.flush(),
    stop: () => (stopping ??= stop()),
  };
}
