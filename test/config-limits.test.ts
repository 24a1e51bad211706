/**
 * Proves that the `limits` section is optional with safe defaults, that each limit can
 * be set (0 turning off the ones documented as switchable), and that out-of-range or
 * mistyped values and unknown keys are each reported at their path.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config/load.js';
import { DEFAULT_LIMITS } from '../src/config/limits-section.js';

let dir: string;

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdgate-limits-'));
  for (const name of ['ca.crt', 'server.crt', 'server.key']) fs.writeFileSync(path.join(dir, name), 'placeholder\n');
});

afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

function doc(limits?: unknown): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:2379', advertiseClientUrls: ['https://127.0.0.1:2379'], tls: { cert: 'server.crt', key: 'server.key', clientCA: 'ca.crt' } },
    upstream: { endpoints: ['https://127.0.0.1:12379'], tls: { ca: 'ca.crt' } },
    policy: { roles: {}, bindings: [] },
    ...(limits === undefined ? {} : { limits }),
  };
}

function issuesOf(limits: unknown): string[] {
  try {
    parseConfig(doc(limits), { source: '', baseDir: dir });
  } catch (error: unknown) {
    if (error instanceof ConfigError) return error.issues.map((issue) => `${issue.path}: ${issue.message}`);
    throw error;
  }
  return [];
}

describe('limits', () => {
  it('defaults every limit when the section is absent', () => {
    const config = parseConfig(doc(), { source: '', baseDir: dir });
    expect(config.limits).toEqual(DEFAULT_LIMITS);
    expect(config.limits.maxConnections).toBeGreaterThan(0);
    expect(config.limits.requestsPerSecond).toBeGreaterThan(0);
    expect(config.limits.maxWatcherBufferBytes).toBeGreaterThanOrEqual(64 * 1024);
  });

  it('takes each limit as given, and 0 for the switchable ones', () => {
    const given = {
      maxConnections: 0,
      maxStreamsPerConnection: 5,
      maxWatchersPerIdentity: 0,
      requestsPerSecond: 0,
      burst: 3,
      handshakeTimeoutMs: 250,
      maxWatcherBufferBytes: 65_536,
      idleTimeoutMs: 0,
      connectionBufferBytes: 1_048_576,
      totalBufferBytes: 8_388_608,
      refusalRecordsPerMinute: 0,
      refusalRecordsBurst: 2,
      refusalRecordsTotalPerMinute: 10,
      sendStallTimeoutMs: 0,
      maxRangeReadsPerIdentity: 4,
    };
    expect(parseConfig(doc(given), { source: '', baseDir: dir }).limits).toEqual(given);
  });

  it('fills in the limits a partial section leaves out', () => {
    const config = parseConfig(doc({ requestsPerSecond: 50 }), { source: '', baseDir: dir });
    expect(config.limits).toEqual({ ...DEFAULT_LIMITS, requestsPerSecond: 50 });
  });

  it.each([
    ['maxConnections', -1],
    ['maxStreamsPerConnection', 0],
    ['maxStreamsPerConnection', 2 ** 31],
    ['maxWatchersPerIdentity', 1.5],
    ['requestsPerSecond', '100'],
    ['burst', 0],
    ['handshakeTimeoutMs', 10],
    ['handshakeTimeoutMs', 2 ** 31],
    ['maxWatcherBufferBytes', 1024],
  ])('reports %s = %j at its path', (key, value) => {
    const issues = issuesOf({ [key]: value });
    expect(issues).toHaveLength(1);
    expect(issues[0]).toMatch(new RegExp(`^limits\\.${key}: must be an integer from`, 'u'));
  });

  it('reports an unknown key and a section that is not a mapping', () => {
    expect(issuesOf({ maxConections: 5 }).join('\n')).toContain('limits.maxConections');
    expect(issuesOf([1, 2])).toHaveLength(1);
    expect(issuesOf([1, 2])[0]).toMatch(/^limits: /u);
  });

  it('is deep-frozen like the rest of the Config', () => {
    const config = parseConfig(doc({ burst: 7 }), { source: '', baseDir: dir });
    expect(Object.isFrozen(config.limits)).toBe(true);
  });
});
