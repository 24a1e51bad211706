/**
 * Upstream: per etcd endpoint, one gRPC channel for streams and one plain HTTP/2 session
 * for unary calls (unary-connection.ts), all over TLS with etcdgate's own client
 * certificate. Calls go to the first endpoint whose channel is READY, in configured
 * order, so a dead member is skipped as soon as its channel notices; the channels keep
 * reconnecting in the background and an endpoint comes back by itself.
 *
 * Channel options turn off what costs on the hot path (channelz, retries) and lift the
 * 4 MiB message ceiling: etcd answers can be far larger (a 100 MiB snapshot, big Ranges).
 *
 * grpc-js credentials cannot be changed on a live channel, so new TLS material (rotated
 * client certificate or CA) means a new set of channels: new calls use them at once,
 * while calls and streams already open on the old channels run on until they end; the
 * old channels are closed after a grace period.
 */
import { readFileSync } from 'node:fs';
import * as tls from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import type { UpstreamConfig } from '../config/types.js';
import type { Metrics } from '../observability/metrics-types.js';
import { VERSION } from '../version.js';
import { UnaryConnection } from './unary-connection.js';

export interface Endpoint {
  /** The configured URL, used as the metric label. */
  readonly url: string;
  /** Streams (Watch, LeaseKeepAlive, Snapshot) and the channel state that picks endpoints. */
  readonly client: grpc.Client;
  /** Unary calls. */
  readonly unary: UnaryConnection;
}

const { READY, TRANSIENT_FAILURE, SHUTDOWN } = grpc.connectivityState;

/** Parses "https://host:port" into a grpc-js target ("host:port", IPv6 in brackets). */
export function endpointTarget(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port === '' ? '2379' : parsed.port;
  return `${parsed.hostname}:${port}`;
}

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

/** One set of channels built from one version of the TLS material. */
interface Generation {
  readonly endpoints: readonly Endpoint[];
  readonly up: boolean[];
  retired: boolean;
}

/**
 * Delay before retired channels are closed. Closing is graceful anyway (grpc-js only
 * fails calls still waiting for a connection; the HTTP/2 session is closed with GOAWAY,
 * so open calls and watch streams run to their end); the delay covers calls being set up.
 */
const RETIRE_GRACE_MS = 30_000;

export class UpstreamPool {
  private current: Generation;
  private readonly retiring = new Set<{ generation: Generation; timer: NodeJS.Timeout }>();
  private closed = false;

  constructor(private readonly config: UpstreamConfig, private readonly metrics: Metrics, material: UpstreamMaterial = readUpstreamMaterial(config)) {
    this.current = this.build(material, true);
  }

  /** The endpoints new calls go to. */
  get endpoints(): readonly Endpoint[] {
    return this.current.endpoints;
  }

  /**
   * Switches new calls to channels built with `material`. Open calls stay on the old
   * channels, which are closed once `graceMs` has passed.
   */
  replaceCredentials(material: UpstreamMaterial, graceMs = RETIRE_GRACE_MS): void {
    if (this.closed) return;
    const old = this.current;
    this.current = this.build(material);
    old.retired = true;
    const entry = { generation: old, timer: setTimeout(() => this.closeGeneration(entry), graceMs) };
    entry.timer.unref();
    this.retiring.add(entry);
  }

  private closeGeneration(entry: { generation: Generation; timer: NodeJS.Timeout }): void {
    clearTimeout(entry.timer);
    this.retiring.delete(entry);
    for (const endpoint of entry.generation.endpoints) closeEndpoint(endpoint);
  }

  private build(material: UpstreamMaterial, first = false): Generation {
    const config = this.config;
    const credentials = grpc.credentials.createSsl(material.ca, material.key, material.cert);
    const options: grpc.ChannelOptions = {
      'grpc.max_receive_message_length': config.maxRecvBytes,
      'grpc.max_send_message_length': -1,
      'grpc.keepalive_time_ms': config.keepaliveTimeMs,
      'grpc.keepalive_timeout_ms': config.keepaliveTimeoutMs,
      'grpc.keepalive_permit_without_calls': 1,
      'grpc.http2.max_pings_without_data': 0,
      'grpc.enable_channelz': 0,
      'grpc.enable_retries': 0,
      'grpc.initial_reconnect_backoff_ms': 250,
      'grpc.max_reconnect_backoff_ms': 2000,
      'grpc.service_config_disable_resolution': 1,
    };
    if (config.tls.serverName !== undefined) options['grpc.ssl_target_name_override'] = config.tls.serverName;
    const endpoints = config.endpoints.map((url) => ({
      url,
      // Each endpoint gets its own channel (no subchannel sharing) so its state is its own.
      // One channel, not several per endpoint: measured, spreading unary calls over four
      // connections raised CPU per call (fewer frames coalesced per write) for no gain.
      client: new grpc.Client(endpointTarget(url), credentials, { ...options, 'grpc.use_local_subchannel_pool': 1 }),
      unary: new UnaryConnection(`https://${endpointTarget(url)}`, {
        ...material,
        serverName: config.tls.serverName,
        maxRecvBytes: config.maxRecvBytes,
        dialTimeoutMs: config.dialTimeoutMs,
        keepaliveTimeMs: config.keepaliveTimeMs,
        keepaliveTimeoutMs: config.keepaliveTimeoutMs,
        userAgent: `etcdgate/${VERSION}`,
      }),
    }));
    const generation: Generation = { endpoints, up: endpoints.map(() => false), retired: false };
    endpoints.forEach((endpoint, index) => {
      // The first generation starts "down"; later ones keep the gauge until they know better.
      if (first) this.metrics.upstreamUp(endpoint.url, false);
      this.watchState(generation, endpoint, index);
    });
    return generation;
  }

  /** Follows a channel's connectivity, keeping it connecting and (for the current generation) the up/down gauge current. */
  private watchState(generation: Generation, endpoint: Endpoint, index: number): void {
    const channel = endpoint.client.getChannel();
    const state = channel.getConnectivityState(!generation.retired);
    const isUp = state === READY;
    if (isUp !== generation.up[index]) {
      generation.up[index] = isUp;
      if (!generation.retired) this.metrics.upstreamUp(endpoint.url, isUp);
    }
    if (this.closed || state === SHUTDOWN) return;
    channel.watchConnectivityState(state, Infinity, () => this.watchState(generation, endpoint, index));
  }

  /** True when at least one endpoint's channel is connected. */
  healthy(): boolean {
    return this.current.up.some(Boolean);
  }

  /**
   * The endpoint to use, skipping `exclude` (endpoints that already failed this call):
   * the first READY one, else the first not known to be failing, else the first left.
   */
  pick(exclude?: ReadonlySet<Endpoint>): Endpoint | undefined {
    let fallback: Endpoint | undefined;
    let lastResort: Endpoint | undefined;
    for (const endpoint of this.current.endpoints) {
      if (exclude?.has(endpoint) === true) continue;
      const state = endpoint.client.getChannel().getConnectivityState(false);
      if (state === READY) return endpoint;
      if (state !== TRANSIENT_FAILURE && fallback === undefined) fallback = endpoint;
      lastResort ??= endpoint;
    }
    return fallback ?? lastResort;
  }

  close(): void {
    this.closed = true;
    for (const entry of [...this.retiring]) this.closeGeneration(entry);
    for (const endpoint of this.current.endpoints) closeEndpoint(endpoint);
  }
}

function closeEndpoint(endpoint: Endpoint): void {
  endpoint.client.close();
  endpoint.unary.close();
}
