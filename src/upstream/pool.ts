/**
 * Upstream: one HTTP/2 connection per etcd endpoint (src/transport/http2/client.ts), over
 * TLS with etcdgate's own client certificate, carrying every call to that member, unary
 * and streaming alike. Calls go to the first endpoint whose connection is ready, in
 * configured order, so a dead member is skipped as soon as its connection fails; each
 * endpoint keeps reconnecting in the background (250 ms doubling to 2 s) and comes back
 * by itself.
 *
 * New TLS material (a rotated client certificate or CA) is used by the next connection
 * of each endpoint: the current ones are sent GOAWAY, so calls and watch streams already
 * open on them run to their end while new calls go to connections made with the new
 * material.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import type { UpstreamConfig } from '../config/types.js';
import type { Metrics } from '../observability/metrics-types.js';
import { GrpcClientCall, requestHeaderBlock, type CallRequest, type ClientCallHandler } from '../transport/grpc/client-call.js';
import { ClientSession } from '../transport/http2/client.js';
import { DEFAULT_CONNECTION_OPTIONS, type ConnectionOptions } from '../transport/http2/connection.js';
import { VERSION } from '../version.js';

/** The upstream TLS files, read and checked together (the key matches the certificate, everything parses). */
export interface UpstreamMaterial {
  readonly ca: Buffer;
  readonly cert: Buffer | null;
  readonly key: Buffer | null;
}

/** Reads the upstream TLS files now; throws if any is unreadable or they do not form a usable context. */
export function readUpstreamMaterial(config: UpstreamConfig): UpstreamMaterial {
  const material: UpstreamMaterial = {
    ca: readFileSync(config.tls.ca),
    key: config.tls.key === undefined ? null : readFileSync(config.tls.key),
    cert: config.tls.cert === undefined ? null : readFileSync(config.tls.cert),
  };
  if (!/-----BEGIN CERTIFICATE-----/u.test(material.ca.toString('latin1'))) throw new Error('upstream.tls.ca: no PEM certificate found');
  tls.createSecureContext({
    ca: material.ca,
    ...(material.cert === null ? {} : { cert: material.cert }),
    ...(material.key === null ? {} : { key: material.key }),
  });
  return material;
}

/** "https://host:port" as host and port (the port defaults to etcd's 2379; IPv6 without brackets). */
export function endpointAddress(url: string): { host: string; port: number } {
  const parsed = new URL(url);
  return { host: parsed.hostname.replace(/^\[|\]$/gu, ''), port: parsed.port === '' ? 2379 : Number(parsed.port) };
}

/**
 * The upstream connection's windows. Streams: 256 KiB each, so a watch or a large answer
 * whose client does not read holds at most that much here before etcd is slowed down.
 * The connection: 64 MiB, reopened as data arrives, so one slow stream never stalls the
 * others sharing etcd's connection.
 */
const UPSTREAM_CONNECTION: ConnectionOptions = Object.freeze({
  ...DEFAULT_CONNECTION_OPTIONS,
  maxConcurrentStreams: 0,
  streamWindow: 256 * 1024,
  connectionWindow: 64 * 1024 * 1024,
  maxHeaderListSize: 1024 * 1024,
  maxHeaderBlockBytes: 1024 * 1024,
  maxContinuations: 1024,
  // etcd is trusted not to flood; the buckets only guard against a broken peer.
  idleFrameBurst: 1_000_000,
  idleFramesPerSecond: 1_000_000,
  maxUnsentBytes: 1024 * 1024 * 1024,
});

const INITIAL_BACKOFF_MS = 250;
const MAX_BACKOFF_MS = 2_000;

/** One etcd member: its current connection, reconnecting as needed. */
export class Endpoint {
  readonly host: string;
  readonly port: number;
  private readonly authority: string;
  private readonly headerBlocks = new Map<string, Buffer>();
  private session: ClientSession | undefined;
  private backoffMs = INITIAL_BACKOFF_MS;
  private retryTimer: NodeJS.Timeout | undefined;
  private closed = false;
  /** Whether the last connection attempt failed (and the next has not succeeded yet). */
  failing = false;

  constructor(
    /** The configured URL, used as the metric label. */
    readonly url: string,
    private readonly config: UpstreamConfig,
    private material: UpstreamMaterial,
    private readonly onState: (endpoint: Endpoint, up: boolean) => void,
  ) {
    const { host, port } = endpointAddress(url);
    this.host = host;
    this.port = port;
    this.authority = `${host.includes(':') ? `[${host}]` : host}:${port}`;
    this.connect();
  }

  /** Whether calls go out at once (the connection is up). */
  get ready(): boolean {
    return this.session?.usable === true;
  }

  /**
   * Starts a call on this endpoint's connection; undefined when none can carry it now
   * (then the caller tries another endpoint or fails UNAVAILABLE, notSent).
   */
  call(path: string, request: Omit<CallRequest, 'headerBlock'>, handler: ClientCallHandler, endStream = false): GrpcClientCall | undefined {
    let session = this.session;
    if (session === undefined || session.connection.closed || session.connection.goawayReceived) {
      // A call does not wait out the background backoff: it starts an attempt now and
      // rides it (failing as not sent if that attempt fails too).
      if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
      this.retryTimer = undefined;
      this.connect();
      session = this.session;
      if (session === undefined) return undefined;
    }
    let block = this.headerBlocks.get(path);
    if (block === undefined) {
      block = requestHeaderBlock(this.authority, path, `etcdgate/${VERSION}`);
      this.headerBlocks.set(path, block);
    }
    return GrpcClientCall.start(session.connection, { ...request, headerBlock: block }, handler, endStream);
  }

  /** New TLS material: the next connection uses it; the current one finishes its calls and closes. */
  replaceMaterial(material: UpstreamMaterial): void {
    this.material = material;
    const old = this.session;
    this.session = undefined;
    old?.shutdown();
    this.connect();
  }

  close(): void {
    this.closed = true;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer);
    this.session?.shutdown();
    this.session = undefined;
  }

  private connect(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    const current = this.session;
    if (current !== undefined && !current.connection.closed && !current.connection.goawayReceived) return;
    const { config, material } = this;
    const session: ClientSession = new ClientSession(
      {
        host: this.host,
        port: this.port,
        ca: material.ca,
        cert: material.cert ?? undefined,
        key: material.key ?? undefined,
        serverName: config.tls.serverName,
        dialTimeoutMs: config.dialTimeoutMs,
        keepaliveTimeMs: config.keepaliveTimeMs,
        keepaliveTimeoutMs: config.keepaliveTimeoutMs,
        connection: UPSTREAM_CONNECTION,
      },
      {
        onReady: () => {
          if (this.session !== session) return;
          this.backoffMs = INITIAL_BACKOFF_MS;
          this.failing = false;
          this.onState(this, true);
        },
        onGoaway: () => {
          if (this.session !== session) return;
          // Calls in flight below etcd's last stream go on; new calls need a new connection.
          this.session = undefined;
          this.onState(this, false);
          this.connect();
        },
        onClose: () => {
          if (this.session !== session) return;
          this.session = undefined;
          this.failing = true;
          this.onState(this, false);
          this.retryLater();
        },
      },
    );
    this.session = session;
  }

  private retryLater(): void {
    if (this.closed || this.retryTimer !== undefined) return;
    const delay = this.backoffMs;
    this.backoffMs = Math.min(MAX_BACKOFF_MS, this.backoffMs * 2);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.connect();
    }, delay);
    this.retryTimer.unref();
  }
}

export class UpstreamPool {
  readonly endpoints: readonly Endpoint[];
  private readonly up = new Map<Endpoint, boolean>();

  constructor(config: UpstreamConfig, private readonly metrics: Metrics, material: UpstreamMaterial = readUpstreamMaterial(config)) {
    this.endpoints = config.endpoints.map((url) => {
      metrics.upstreamUp(url, false);
      return new Endpoint(url, config, material, (endpoint, isUp) => this.onState(endpoint, isUp));
    });
  }

  private onState(endpoint: Endpoint, isUp: boolean): void {
    if (this.up.get(endpoint) === isUp) return;
    this.up.set(endpoint, isUp);
    this.metrics.upstreamUp(endpoint.url, isUp);
  }

  /** Switches every endpoint to `material` (see the file comment). */
  replaceCredentials(material: UpstreamMaterial): void {
    for (const endpoint of this.endpoints) endpoint.replaceMaterial(material);
  }

  /** True when at least one endpoint's connection is up. */
  healthy(): boolean {
    return this.endpoints.some((endpoint) => endpoint.ready);
  }

  /**
   * The endpoint to use, skipping `exclude` (endpoints that already failed this call):
   * the first ready one, else the first not known to be failing, else the first left.
   */
  pick(exclude?: ReadonlySet<Endpoint>): Endpoint | undefined {
    let fallback: Endpoint | undefined;
    let lastResort: Endpoint | undefined;
    for (const endpoint of this.endpoints) {
      if (exclude?.has(endpoint) === true) continue;
      if (endpoint.ready) return endpoint;
      if (!endpoint.failing && fallback === undefined) fallback = endpoint;
      lastResort ??= endpoint;
    }
    return fallback ?? lastResort;
  }

  close(): void {
    for (const endpoint of this.endpoints) endpoint.close();
  }
}
