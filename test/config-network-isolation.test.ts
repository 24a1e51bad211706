/**
 * The network-isolation keys of the config: `server.allowedSources` and
 * `server.proxyProtocol` are validated once at load, each bad CIDR reported at its own
 * path; good ones are kept in canonical form; `limits.refusalRecords*` have defaults.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, parseConfig } from '../src/config/load.js';

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'etcdgate-config-net-'));
for (const name of ['ca.crt', 'server.crt', 'server.key']) fs.writeFileSync(path.join(dir, name), 'placeholder\n');

afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function documentWith(server: Record<string, unknown>, limits?: Record<string, unknown>): Record<string, unknown> {
  return {
    server: { listen: '127.0.0.1:2379', advertiseClientUrls: ['https://127.0.0.1:2379'], tls: { cert: 'server.crt', key: 'server.key', clientCA: 'ca.crt' }, ...server },
    upstream: { endpoints: ['https://127.0.0.1:12379'], tls: { ca: 'ca.crt' } },
    policy: { roles: { r: {} }, bindings: [{ match: { cn: 'x' }, roles: ['r'] }] },
    ...(limits === undefined ? {} : { limits }),
  };
}

const parse = (doc: Record<string, unknown>): ReturnType<typeof parseConfig> => parseConfig(doc, { source: 'test.yaml', baseDir: dir });

function issues(doc: Record<string, unknown>): string[] {
  try {
    parse(doc);
  } catch (error: unknown) {
    if (error instanceof ConfigError) return error.issues.map((i) => `${i.path}: ${i.message}`);
  }
  return [];
}

describe('server.allowedSources and server.proxyProtocol', () => {
  it('are absent by default; the refusal record limits have defaults', () => {
    const config = parse(documentWith({}));
    expect(config.server.allowedSources).toBeUndefined();
    expect(config.server.proxyProtocol).toBeUndefined();
    expect(config.limits).toMatchObject({ refusalRecordsPerMinute: 60, refusalRecordsBurst: 20, refusalRecordsTotalPerMinute: 600 });
  });

  it('keep good CIDRs (canonical) and the header timeout default', () => {
    const config = parse(documentWith({ allowedSources: ['10.0.0.0/8', '127.0.0.2', '2001:db8::/32'], proxyProtocol: { trustedFrom: ['192.168.0.10/32'] } }));
    expect(config.server.allowedSources).toEqual(['10.0.0.0/8', '127.0.0.2/32', '2001:db8::/32']);
    expect(config.server.proxyProtocol).toEqual({ trustedFrom: ['192.168.0.10/32'], headerTimeoutMs: 3000 });
  });

  it('report each bad entry at its path', () => {
    const found = issues(documentWith({ allowedSources: ['10.0.0.0/8', '10.1.0.1/16', 'x', 5], proxyProtocol: { headerTimeoutMs: 0, bogus: 1 } }, { refusalRecordsBurst: 0 }));
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^server\.allowedSources\[1\]: has host bits set; the network is 10\.1\.0\.0\/16/u),
        expect.stringMatching(/^server\.allowedSources\[2\]: /u),
        expect.stringMatching(/^server\.allowedSources\[3\]: must be a CIDR string/u),
        'server.proxyProtocol.trustedFrom: is required',
        expect.stringMatching(/^server\.proxyProtocol\.headerTimeoutMs: /u),
        expect.stringMatching(/^server\.proxyProtocol\.bogus: unknown key/u),
        expect.stringMatching(/^limits\.refusalRecordsBurst: /u),
      ]),
    );
    expect(issues(documentWith({ allowedSources: [] }))).toEqual([expect.stringMatching(/^server\.allowedSources: must be a non-empty list/u)]);
  });
});
