/**
 * Parser for the `limits` section: the abuse limits (connections, streams, watchers,
 * request rate, handshake time, unread watch data). The whole section is optional and
 * every limit has a default sized for a busy Kubernetes control plane, not for a test.
 */
import type { LimitsConfig } from './types.js';
import type { Reader } from './read.js';
import { MAX_MESSAGE_BYTES, MAX_TIMER_MS, at } from './read.js';

const LIMITS_KEYS = [
  'maxConnections',
  'maxStreamsPerConnection',
  'maxWatchersPerIdentity',
  'requestsPerSecond',
  'burst',
  'handshakeTimeoutMs',
  'maxWatcherBufferBytes',
  'idleTimeoutMs',
  'connectionBufferBytes',
  'totalBufferBytes',
  'refusalRecordsPerMinute',
  'refusalRecordsBurst',
  'refusalRecordsTotalPerMinute',
  'sendStallTimeoutMs',
  'maxRangeReadsPerIdentity',
];

/** The defaults, also what an absent section means. */
export const DEFAULT_LIMITS: LimitsConfig = {
  maxConnections: 10_000,
  maxStreamsPerConnection: 1_000,
  maxWatchersPerIdentity: 10_000,
  requestsPerSecond: 10_000,
  burst: 20_000,
  handshakeTimeoutMs: 10_000,
  maxWatcherBufferBytes: 16 * 1024 * 1024,
  idleTimeoutMs: 300_000,
  connectionBufferBytes: 16 * 1024 * 1024,
  totalBufferBytes: 256 * 1024 * 1024,
  // One probe a second per source, 10 a second overall: a port scan cannot fill the audit buffer.
  refusalRecordsPerMinute: 60,
  refusalRecordsBurst: 20,
  refusalRecordsTotalPerMinute: 600,
  sendStallTimeoutMs: 30_000,
  // etcd builds each answer whole: 16 reads of a large range at once per caller, the rest wait.
  maxRangeReadsPerIdentity: 16,
};

/** HTTP/2 carries the stream limit in a 31-bit setting. */
const MAX_STREAMS = 2_147_483_647;
/** A connection's receive window: at least HTTP/2's default, at most the protocol's 2^31 - 1. */
const MIN_CONNECTION_BUFFER_BYTES = 65_535;
const MAX_WINDOW_BYTES = 2_147_483_647;
/** One large watch event must fit: below 64 KiB every busy watcher would be cut. */
const MIN_WATCHER_BUFFER_BYTES = 64 * 1024;

/** Reads the optional `limits` section. */
export function readLimits(reader: Reader, value: unknown): LimitsConfig {
  const path = 'limits';
  const raw = reader.optionalMapping(value, path, LIMITS_KEYS);
  const count = (key: keyof LimitsConfig, min: number, max = Number.MAX_SAFE_INTEGER): number =>
    reader.integer(raw[key], at(path, key), { min, max, fallback: DEFAULT_LIMITS[key] });
  return {
    maxConnections: count('maxConnections', 0),
    maxStreamsPerConnection: count('maxStreamsPerConnection', 1, MAX_STREAMS),
    maxWatchersPerIdentity: count('maxWatchersPerIdentity', 0),
    requestsPerSecond: count('requestsPerSecond', 0),
    burst: count('burst', 1),
    handshakeTimeoutMs: count('handshakeTimeoutMs', 100, MAX_TIMER_MS),
    maxWatcherBufferBytes: count('maxWatcherBufferBytes', MIN_WATCHER_BUFFER_BYTES, MAX_MESSAGE_BYTES),
    idleTimeoutMs: count('idleTimeoutMs', 0, MAX_TIMER_MS),
    connectionBufferBytes: count('connectionBufferBytes', MIN_CONNECTION_BUFFER_BYTES, MAX_WINDOW_BYTES),
    totalBufferBytes: count('totalBufferBytes', MIN_CONNECTION_BUFFER_BYTES, Number.MAX_SAFE_INTEGER),
    refusalRecordsPerMinute: count('refusalRecordsPerMinute', 0),
    refusalRecordsBurst: count('refusalRecordsBurst', 1),
    refusalRecordsTotalPerMinute: count('refusalRecordsTotalPerMinute', 1),
    sendStallTimeoutMs: count('sendStallTimeoutMs', 0, MAX_TIMER_MS),
    maxRangeReadsPerIdentity: count('maxRangeReadsPerIdentity', 0),
  };
}
