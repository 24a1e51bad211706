/**
 * Parsers for the two listeners: `server` (the mTLS gRPC endpoint clients use) and
 * `admin` (metrics and health over HTTP).
 */
import type { AdminConfig, ServerConfig, ServerTlsConfig } from './types.js';
import type { HostPort } from './addresses.js';
import { parseHostPort } from './addresses.js';
import { readAllowedSources, readProxyProtocol } from './network-section.js';
import { readHttpsUrls } from './read-urls.js';
import type { Reader } from './read.js';
import { MAX_TIMER_MS, UNLIMITED_BYTES, at, isAbsent } from './read.js';

/** etcd's own request limit is 1.5 MiB; 10 MiB leaves room for large Txn batches. */
const DEFAULT_MAX_RECV_BYTES = 10 * 1024 * 1024;

/** Loopback by default, so metrics are never exposed to the network by accident. */
const DEFAULT_ADMIN_LISTEN = '127.0.0.1:9091';

const SERVER_KEYS = ['listen', 'advertiseClientUrls', 'tls', 'maxRecvBytes', 'maxSendBytes', 'shutdownTimeoutMs', 'allowedSources', 'proxyProtocol'];
const SERVER_TLS_KEYS = ['cert', 'key', 'clientCA', 'crl', 'minVersion'];
const ADMIN_KEYS = ['listen', 'tls'];
const ADMIN_TLS_KEYS = ['cert', 'key'];

/** Reads a listen address; port 0 is allowed so tests can let the OS choose. */
export function readListen(reader: Reader, value: unknown, fieldPath: string): HostPort {
  const text = reader.requiredString(value, fieldPath);
  if (text === '') return { host: '', port: 0 };
  const parsed = parseHostPort(text, 0);
  if (!parsed.ok) {
    reader.report(fieldPath, parsed.error);
    return { host: '', port: 0 };
  }
  return parsed.value;
}

/** Reads the `server` section (required). */
export function readServer(reader: Reader, value: unknown): ServerConfig {
  const path = 'server';
  const raw = reader.requiredMapping(value, path, SERVER_KEYS);
  if (raw === undefined) return PLACEHOLDER_SERVER;
  const allowedSources = readAllowedSources(reader, raw['allowedSources'], at(path, 'allowedSources'));
  const proxyProtocol = readProxyProtocol(reader, raw['proxyProtocol'], at(path, 'proxyProtocol'));
  return {
    listen: readListen(reader, raw['listen'], at(path, 'listen')),
    advertiseClientUrls: readHttpsUrls(reader, raw['advertiseClientUrls'], at(path, 'advertiseClientUrls')),
    tls: readServerTls(reader, raw['tls'], at(path, 'tls')),
    maxRecvBytes: reader.byteLimit(raw['maxRecvBytes'], at(path, 'maxRecvBytes'), {
      fallback: DEFAULT_MAX_RECV_BYTES,
      unlimited: false,
    }),
    maxSendBytes: reader.byteLimit(raw['maxSendBytes'], at(path, 'maxSendBytes'), {
      fallback: UNLIMITED_BYTES,
      unlimited: true,
    }),
    shutdownTimeoutMs: reader.integer(raw['shutdownTimeoutMs'], at(path, 'shutdownTimeoutMs'), {
      min: 0,
      max: MAX_TIMER_MS,
      fallback: 10_000,
    }),
    ...(allowedSources === undefined ? {} : { allowedSources }),
    ...(proxyProtocol === undefined ? {} : { proxyProtocol }),
  };
}

function readServerTls(reader: Reader, value: unknown, path: string): ServerTlsConfig {
  const tls = reader.requiredMapping(value, path, SERVER_TLS_KEYS);
  if (tls === undefined) return PLACEHOLDER_SERVER.tls;
  const crl = reader.optionalFile(tls['crl'], at(path, 'crl'));
  return {
    cert: reader.requiredFile(tls['cert'], at(path, 'cert')),
    key: reader.requiredFile(tls['key'], at(path, 'key')),
    clientCA: reader.requiredFile(tls['clientCA'], at(path, 'clientCA')),
    ...(crl === undefined ? {} : { crl }),
    minVersion: reader.choice(tls['minVersion'], at(path, 'minVersion'), ['TLSv1.2', 'TLSv1.3'], 'TLSv1.2'),
  };
}

/** Stands in for a missing section; never returned from parseConfig (an issue was recorded). */
const PLACEHOLDER_SERVER: ServerConfig = {
  listen: { host: '', port: 0 },
  advertiseClientUrls: [],
  tls: { cert: '', key: '', clientCA: '', minVersion: 'TLSv1.2' },
  maxRecvBytes: DEFAULT_MAX_RECV_BYTES,
  maxSendBytes: UNLIMITED_BYTES,
  shutdownTimeoutMs: 0,
};

/** Reads the `admin` section (optional; defaults to plain HTTP on 127.0.0.1:9091). */
export function readAdmin(reader: Reader, value: unknown): AdminConfig {
  const path = 'admin';
  const raw = reader.optionalMapping(value, path, ADMIN_KEYS);
  const listen = readListen(reader, raw['listen'] ?? DEFAULT_ADMIN_LISTEN, at(path, 'listen'));
  if (isAbsent(raw['tls'])) return { listen };
  const tlsPath = at(path, 'tls');
  const tls = reader.mapping(raw['tls'], tlsPath, ADMIN_TLS_KEYS);
  return {
    listen,
    tls: {
      cert: reader.requiredFile(tls['cert'], at(tlsPath, 'cert')),
      key: reader.requiredFile(tls['key'], at(tlsPath, 'key')),
    },
  };
}

/** Reports when two listeners would fight over one port (wildcard hosts overlap everything). */
export function checkDistinctListeners(reader: Reader, server: HostPort, admin: HostPort): void {
  if (server.port === 0 || server.port !== admin.port || server.host === '' || admin.host === '') return;
  const wildcard = (host: string): boolean => host === '0.0.0.0' || host === '::';
  if (server.host === admin.host || wildcard(server.host) || wildcard(admin.host)) {
    reader.report('admin.listen', 'must not use the same address and port as server.listen');
  }
}
