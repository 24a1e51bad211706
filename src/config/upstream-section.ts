/**
 * Parser for the `upstream` section: the etcd members etcdgate forwards to and the
 * credentials and timings it uses on that connection.
 */
import type { UpstreamConfig } from './types.js';
import type { Reader } from './read.js';
import { MAX_TIMER_MS, UNLIMITED_BYTES, at } from './read.js';
import { readHttpsUrls } from './read-urls.js';
import { DEFAULT_HEALTH_CHECK, DEFAULT_VERSION_CHECK, readHealthCheck, readVersionCheck } from './upstream-health-section.js';

const UPSTREAM_KEYS = ['endpoints', 'tls', 'keepaliveTimeMs', 'keepaliveTimeoutMs', 'dialTimeoutMs', 'maxRecvBytes', 'healthCheck', 'versionCheck'];
const UPSTREAM_TLS_KEYS = ['ca', 'cert', 'key', 'serverName'];

/**
 * etcd answers pings sent more often than every 5 s with GOAWAY ("too_many_pings"),
 * which would drop every Watch on the connection; so shorter intervals are refused.
 */
const MIN_KEEPALIVE_TIME_MS = 5_000;

/** Reads the `upstream` section (required). */
export function readUpstream(reader: Reader, value: unknown): UpstreamConfig {
  const path = 'upstream';
  const raw = reader.requiredMapping(value, path, UPSTREAM_KEYS);
  if (raw === undefined) return PLACEHOLDER_UPSTREAM;
  return {
    endpoints: readHttpsUrls(reader, raw['endpoints'], at(path, 'endpoints')),
    tls: readUpstreamTls(reader, raw['tls'], at(path, 'tls')),
    keepaliveTimeMs: reader.integer(raw['keepaliveTimeMs'], at(path, 'keepaliveTimeMs'), {
      min: MIN_KEEPALIVE_TIME_MS,
      max: MAX_TIMER_MS,
      fallback: 30_000,
    }),
    keepaliveTimeoutMs: reader.integer(raw['keepaliveTimeoutMs'], at(path, 'keepaliveTimeoutMs'), {
      min: 1,
      max: MAX_TIMER_MS,
      fallback: 10_000,
    }),
    dialTimeoutMs: reader.integer(raw['dialTimeoutMs'], at(path, 'dialTimeoutMs'), {
      min: 1,
      max: MAX_TIMER_MS,
      fallback: 5_000,
    }),
    maxRecvBytes: reader.byteLimit(raw['maxRecvBytes'], at(path, 'maxRecvBytes'), {
      fallback: UNLIMITED_BYTES,
      unlimited: true,
    }),
    healthCheck: readHealthCheck(reader, raw['healthCheck'], at(path, 'healthCheck')),
    versionCheck: readVersionCheck(reader, raw['versionCheck'], at(path, 'versionCheck')),
  };
}

function readUpstreamTls(reader: Reader, value: unknown, path: string): UpstreamConfig['tls'] {
  const tls = reader.requiredMapping(value, path, UPSTREAM_TLS_KEYS);
  if (tls === undefined) return PLACEHOLDER_UPSTREAM.tls;
  const ca = reader.requiredFile(tls['ca'], at(path, 'ca'));
  const pair = reader.optionalCertKey(tls, path);
  const serverName = reader.optionalString(tls['serverName'], at(path, 'serverName'));
  return {
    ca,
    ...(pair === undefined ? {} : pair),
    ...(serverName === undefined ? {} : { serverName }),
  };
}

/** Stands in for a missing section; never returned from parseConfig (an issue was recorded). */
const PLACEHOLDER_UPSTREAM: UpstreamConfig = {
  endpoints: [],
  tls: { ca: '' },
  keepaliveTimeMs: MIN_KEEPALIVE_TIME_MS,
  keepaliveTimeoutMs: 1,
  dialTimeoutMs: 1,
  maxRecvBytes: UNLIMITED_BYTES,
  healthCheck: DEFAULT_HEALTH_CHECK,
  versionCheck: DEFAULT_VERSION_CHECK,
};
