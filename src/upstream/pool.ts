/**
 * Upstream: one gRPC channel per etcd endpoint, all over TLS with etcdgate's own client
 * certificate. Calls go to the first endpoint whose channel is READY, in configured
 * order, so a dead member is skipped as soon as its channel notices; the channels keep
 * reconnecting in the background and an endpoint comes back by itself.
 *
 * Channel options turn off what costs on the hot path (channelz, retries) and lift the
 * 4 MiB message ceiling: etcd answers can be far larger (a 100 MiB snapshot, big Ranges).
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import type { UpstreamConfig } from '../config/types.js';
import type { Metrics } from '../observability/metrics-types.js';

export interface Endpoint {
  /** The configured URL, used as the metric label. */
  readonly url: string;
  readonly client: grpc.Client;
}

const { READY, TRANSIENT_FAILURE, SHUTDOWN } = grpc.connectivityState;

/** Parses "https://host:port" into a grpc-js target ("host:port", IPv6 in brackets). */
export function endpointTarget(url: string): string {
  const parsed = new URL(url);
  const port = parsed.port === '' ? '2379' : parsed.port;
  return `${parsed.hostname}:${port}`;
}

export class UpstreamPool {
  readonly endpoints: readonly Endpoint[];
  private readonly up: boolean[];
  private closed = false;

  constructor(config: UpstreamConfig, private readonly metrics: Metrics) {
    const credentials = grpc.credentials.createSsl(
      readFileSync(config.tls.ca),
      config.tls.key === undefined ? null : readFileSync(config.tls.key),
      config.tls.cert === undefined ? null : readFileSync(config.tls.cert),
    );
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
    this.endpoints = config.endpoints.map((url) => ({
      url,
      // Each endpoint gets its own channel (no subchannel sharing) so its state is its own.
      client: new grpc.Client(endpointTarget(url), credentials, { ...options, 'grpc.use_local_subchannel_pool': 1 }),
    }));
    this.up = this.endpoints.map(() => false);
    this.endpoints.forEach((endpoint, index) => {
      metrics.upstreamUp(endpoint.url, false);
      this.watchState(endpoint, index);
    });
  }

  /** Follows a channel's connectivity, keeping it connecting and the up/down gauge current. */
  private watchState(endpoint: Endpoint, index: number): void {
    const channel = endpoint.client.getChannel();
    const state = channel.getConnectivityState(true);
    const isUp = state === READY;
    if (isUp !== this.up[index]) {
      this.up[index] = isUp;
      this.metrics.upstreamUp(endpoint.url, isUp);
    }
    if (this.closed || state === SHUTDOWN) return;
    channel.watchConnectivityState(state, Infinity, () => this.watchState(endpoint, index));
  }

  /** True when at least one endpoint's channel is connected. */
  healthy(): boolean {
    return this.up.some(Boolean);
  }

  /**
   * The endpoint to use, skipping `exclude` (endpoints that already failed this call):
   * the first READY one, else the first not known to be failing, else the first left.
   */
  pick(exclude?: ReadonlySet<Endpoint>): Endpoint | undefined {
    let fallback: Endpoint | undefined;
    let lastResort: Endpoint | undefined;
    for (const endpoint of this.endpoints) {
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
    for (const endpoint of this.endpoints) endpoint.client.close();
  }
}
