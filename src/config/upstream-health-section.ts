/**
 * Parsers for `upstream.healthCheck` (the linearizable read /readyz follows) and
 * `upstream.versionCheck` (every member's version against a minimum per release line).
 * Both are optional; the defaults suit a production cluster.
 */
import { parseEtcdVersion, DEFAULT_MINIMUM_VERSIONS } from '../health/etcd-version.js';
import type { UpstreamConfig } from './types.js';
import type { Reader } from './read.js';
import { MAX_TIMER_MS, at, describe, index, isAbsent } from './read.js';

/**
 * Every 5 s, at most 2 s each: a lost quorum shows in /readyz within 7 s, for one read
 * of a single key every 5 s (etcdctl endpoint health makes the same read).
 */
export const DEFAULT_HEALTH_CHECK: UpstreamConfig['healthCheck'] = Object.freeze({ intervalMs: 5_000, timeoutMs: 2_000 });

/** Every 30 s, as kube-apiserver polls Maintenance.Status on its endpoints. */
export const DEFAULT_VERSION_CHECK: UpstreamConfig['versionCheck'] = Object.freeze({ intervalMs: 30_000, minimumVersions: DEFAULT_MINIMUM_VERSIONS });

/** Reads `upstream.healthCheck`. */
export function readHealthCheck(reader: Reader, value: unknown, path: string): UpstreamConfig['healthCheck'] {
  const raw = reader.optionalMapping(value, path, ['intervalMs', 'timeoutMs']);
  const intervalMs = reader.integer(raw['intervalMs'], at(path, 'intervalMs'), { min: 100, max: MAX_TIMER_MS, fallback: DEFAULT_HEALTH_CHECK.intervalMs });
  const timeoutMs = reader.integer(raw['timeoutMs'], at(path, 'timeoutMs'), { min: 10, max: MAX_TIMER_MS, fallback: DEFAULT_HEALTH_CHECK.timeoutMs });
  // Checks never overlap: one that could outlast the interval would make the readiness older than intended.
  if (timeoutMs > intervalMs) reader.report(at(path, 'timeoutMs'), `must not exceed ${at(path, 'intervalMs')} (${intervalMs})`);
  return { intervalMs, timeoutMs };
}

/** Reads `upstream.versionCheck`: an interval and one minimum version per release line. */
export function readVersionCheck(reader: Reader, value: unknown, path: string): UpstreamConfig['versionCheck'] {
  const raw = reader.optionalMapping(value, path, ['intervalMs', 'minimumVersions']);
  const intervalMs = reader.integer(raw['intervalMs'], at(path, 'intervalMs'), { min: 1_000, max: MAX_TIMER_MS, fallback: DEFAULT_VERSION_CHECK.intervalMs });
  const listPath = at(path, 'minimumVersions');
  const list = raw['minimumVersions'];
  if (isAbsent(list)) return { intervalMs, minimumVersions: DEFAULT_VERSION_CHECK.minimumVersions };
  if (!Array.isArray(list)) {
    reader.report(listPath, `must be a list of versions such as [3.5.33, 3.6.14], got ${describe(list)}`);
    return { intervalMs, minimumVersions: DEFAULT_VERSION_CHECK.minimumVersions };
  }
  const versions: string[] = [];
  const lines = new Set<string>();
  list.forEach((item: unknown, i) => {
    const itemPath = index(listPath, i);
    const parsed = typeof item === 'string' ? parseEtcdVersion(item) : undefined;
    if (parsed === undefined) {
      reader.report(itemPath, 'must be an etcd version MAJOR.MINOR.PATCH (quote it: "3.5.33")');
      return;
    }
    const line = `${parsed.major}.${parsed.minor}`;
    if (lines.has(line)) reader.report(itemPath, `gives a second minimum for the ${line} line`);
    lines.add(line);
    versions.push(parsed.text);
  });
  return { intervalMs, minimumVersions: versions };
}
