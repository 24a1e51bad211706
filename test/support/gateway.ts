/**
 * An etcdgate for integration tests: started in-process from a real Config (built with
 * the same parser operators' files go through) in front of a real etcd, with its audit
 * log written to a temp file that tests read record by record.
 */
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { startGateway, type Gateway } from '../../src/app.js';
import { parseConfig } from '../../src/config/load.js';
import type { Config } from '../../src/config/types.js';
import type { Pki } from './pki.js';

/** A policy that lets CN=root do everything: for tests about forwarding, not policy. */
export const ROOT_ONLY_POLICY = {
  roles: { root: { keys: [{ all: true, access: 'readwrite' }], capabilities: ['admin'] } },
  bindings: [{ match: { cn: 'root' }, roles: ['root'] }],
};

export interface TestGateway {
  readonly gateway: Gateway;
  readonly config: Config;
  /** https://127.0.0.1:PORT */
  readonly endpoint: string;
  readonly adminUrl: string;
  readonly auditFile: string;
  /** Every audit record written so far (flushes first). */
  auditRecords(): Promise<Record<string, unknown>[]>;
  stop(): Promise<void>;
}

export interface TestGatewayOptions {
  readonly pki: Pki;
  readonly upstream: readonly string[];
  /** Inline policy document, or a policy file path. Default: ROOT_ONLY_POLICY. */
  readonly policy?: unknown;
  /** Extra config merged into the top-level sections (e.g. { server: { maxRecvBytes: 1024 } }). */
  readonly overrides?: Readonly<Record<string, Readonly<Record<string, unknown>>>>;
}

/** Starts etcdgate on a free port in front of `upstream`. */
export async function startTestGateway(options: TestGatewayOptions): Promise<TestGateway> {
  const { pki } = options;
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-gw-'));
  const auditFile = path.join(dir, 'audit.jsonl');
  const document: Record<string, Record<string, unknown> | unknown> = {
    server: {
      listen: '127.0.0.1:0',
      advertiseClientUrls: ['https://127.0.0.1:32379'],
      tls: { cert: pki.gateServer.cert, key: pki.gateServer.key, clientCA: pki.ca },
      shutdownTimeoutMs: 3000,
      ...options.overrides?.['server'],
    },
    upstream: {
      endpoints: [...options.upstream],
      tls: { ca: pki.ca, cert: pki.upstreamClient.cert, key: pki.upstreamClient.key },
      keepaliveTimeMs: 10_000,
      ...options.overrides?.['upstream'],
    },
    admin: { listen: '127.0.0.1:0', ...options.overrides?.['admin'] },
    audit: { sink: `file:${auditFile}`, ...options.overrides?.['audit'] },
    log: { level: 'silent', ...options.overrides?.['log'] },
    ...(options.overrides?.['limits'] === undefined ? {} : { limits: options.overrides['limits'] }),
    ...(options.overrides?.['cache'] === undefined ? {} : { cache: options.overrides['cache'] }),
    ...(options.overrides?.['encryption'] === undefined ? {} : { encryption: options.overrides['encryption'] }),
    policy: options.policy ?? ROOT_ONLY_POLICY,
  };
  const config = parseConfig(document, { source: path.join(dir, 'etcdgate.yaml'), baseDir: dir });
  const gateway = await startGateway(config, { logger: pino({ level: 'silent' }) });
  return {
    gateway,
    config,
    endpoint: `https://127.0.0.1:${gateway.port}`,
    adminUrl: `http://127.0.0.1:${gateway.adminPort}`,
    auditFile,
    auditRecords: async () => {
      await gateway.flushAudit();
      if (!existsSync(auditFile)) return [];
      return readFileSync(auditFile, 'utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>);
    },
    stop: async () => {
      await gateway.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}
