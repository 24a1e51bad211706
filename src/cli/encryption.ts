/**
 * `etcdgate encryption status` and `etcdgate encryption rewrite`: the operator's side of
 * encryption at rest. Both read the config (its encryption section and keys, its
 * upstream section), talk to etcd with etcdgate's own upstream identity through the
 * same pool and calls the gateway uses (no proxy is started), and write one audit
 * record per run to the configured sink.
 *
 *   etcdgate encryption status  --config FILE [--prefix P]
 *   etcdgate encryption rewrite --config FILE --prefix P
 *
 * Progress goes to stderr when it is a terminal; the summary always goes to stdout.
 * Exit status: 0 done, 1 some values could not be decrypted (rewrite) or etcd failed,
 * 2 bad usage or config.
 */
import { readFileSync } from 'node:fs';
import { X509Certificate } from 'node:crypto';
import { parseArgs } from 'node:util';
import { createAuditor } from '../audit/auditor.js';
import type { CallEvent } from '../audit/types.js';
import { intervalsOf } from '../config/encryption-section.js';
import { loadConfig } from '../config/load.js';
import type { Config } from '../config/types.js';
import { Keyring } from '../encryption/keyring.js';
import { encryptionStatus, prefixTarget, rewritePrefix, type ResourceStatus, type RewriteSummary, type ScanTarget } from '../encryption/maintenance.js';
import { ALL_KEYS_FROM, prefixEnd } from '../etcd/keys.js';
import { NOOP_METRICS } from '../observability/metrics-types.js';
import { formatKey } from '../policy/key-range.js';
import { identityFromDer, type Identity } from '../tls/identity.js';
import { upstreamCalls } from '../upstream/calls.js';
import { UpstreamPool, readUpstreamMaterial } from '../upstream/pool.js';
import { VERSION } from '../version.js';

/** Where the command writes; main.ts passes the process's streams. */
export interface CommandIo {
  readonly stdout: NodeJS.WritableStream;
  readonly stderr: NodeJS.WritableStream & { readonly isTTY?: boolean };
}

export const ENCRYPTION_USAGE = `  etcdgate encryption status --config FILE [--prefix P]
  etcdgate encryption rewrite --config FILE --prefix P`;

/** Thrown for bad usage or config the command cannot run with (exit 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Runs `etcdgate encryption ...`; resolves with the exit status. */
export async function encryptionCommand(argv: readonly string[], io: CommandIo): Promise<number> {
  const [sub, ...rest] = argv;
  const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, prefix: { type: 'string' } } });
  if (sub !== 'status' && sub !== 'rewrite') throw new UsageError(`unknown encryption command "${sub ?? ''}"; usage:\n${ENCRYPTION_USAGE}`);
  if (values.config === undefined) throw new UsageError(`encryption ${sub} needs --config FILE`);
  if (sub === 'rewrite' && (values.prefix === undefined || values.prefix === '')) throw new UsageError('encryption rewrite needs --prefix P (the values under P are rewritten)');
  const config = loadConfig(values.config);
  if (config.encryption === undefined) throw new UsageError(`${config.source}: no encryption section`);
  const keyring = Keyring.load(config.encryption, NOOP_METRICS);
  const prefix = values.prefix === undefined ? undefined : Buffer.from(values.prefix, 'utf8');
  if (prefix !== undefined && keyring.intersecting(prefix, prefixEnd(prefix)) === undefined) {
    throw new UsageError(`prefix "${formatKey(prefix)}" is outside every encryption resource`);
  }

  const pool = new UpstreamPool(config.upstream, NOOP_METRICS, readUpstreamMaterial(config.upstream));
  const calls = upstreamCalls(pool, Math.max(config.upstream.dialTimeoutMs, 30_000));
  // No policy decides these runs (they act as etcdgate itself): the record says so.
  const auditor = await createAuditor(config.audit, { metrics: NOOP_METRICS, version: VERSION, policyVersion: () => 'none' });
  const progress = io.stderr.isTTY === true ? (text: string) => io.stderr.write(`\r\x1b[K${text}`) : undefined;
  const start = { date: new Date(), ns: process.hrtime.bigint() };
  let code = 0;
  let message = '';
  let details: Record<string, number> = {};
  try {
    if (sub === 'status') {
      const targets = prefix === undefined ? configuredTargets(config) : [prefixTarget(prefix)];
      const report = await encryptionStatus(calls, keyring, targets, (scanned) => progress?.(`scanned ${scanned}`));
      if (progress !== undefined) io.stderr.write('\n');
      io.stdout.write(formatStatus(report.resources, report.scanned, report.outside));
      details = { scanned: report.scanned, outside: report.outside };
      message = `scanned ${report.scanned}`;
    } else if (prefix !== undefined) {
      const summary = await rewritePrefix(calls, keyring, prefix, (s) => progress?.(rewriteLine(s)));
      if (progress !== undefined) io.stderr.write('\n');
      io.stdout.write(`rewrite ${formatKey(prefix)}: ${rewriteLine(summary)}\n`);
      for (const key of summary.failedKeys) io.stderr.write(`etcdgate: the value of key "${formatKey(key)}" could not be decrypted; left as it is\n`);
      const { scanned, rewritten, unchanged, outside, retried, gone, failed } = summary;
      details = { scanned, rewritten, unchanged, outside, retried, gone, failed };
      message = rewriteLine(summary);
      if (summary.failed > 0) code = 1;
    }
  } catch (error: unknown) {
    const text = typeof error === 'object' && error !== null && 'details' in error ? String(error.details) : error instanceof Error ? error.message : String(error);
    io.stderr.write(`etcdgate: encryption ${sub} failed: ${text}\n`);
    message = text;
    code = 1;
  } finally {
    pool.close();
  }
  auditor.record(runRecord(sub, config, prefix, start, { code: code === 0 ? 0 : 13, message, details }));
  await auditor.flush();
  await auditor.close();
  return code;
}

/** Every configured prefix and range, for a status of everything. */
function configuredTargets(config: Config): ScanTarget[] {
  return (config.encryption?.resources ?? []).flatMap((resource) => intervalsOf(resource).map((i) => ({ from: i.from, end: i.to ?? ALL_KEYS_FROM })));
}

function rewriteLine(s: RewriteSummary): string {
  return `scanned ${s.scanned}, rewritten ${s.rewritten}, unchanged ${s.unchanged}, retried ${s.retried}, gone ${s.gone}, failed ${s.failed}, outside ${s.outside}`;
}

/** The status table: per resource, what writes new values and how many values each holder has. */
export function formatStatus(resources: readonly ResourceStatus[], scanned: number, outside: number): string {
  const lines: string[] = [];
  for (const resource of resources) {
    lines.push(`resource ${resource.resource} (writes with ${resource.writesWith})`);
    const counts = [...resource.counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
    if (counts.length === 0) lines.push('  (no values)');
    for (const [label, count] of counts) lines.push(`  ${label.padEnd(40)} ${count}`);
  }
  lines.push(`scanned ${scanned} values${outside > 0 ? ` (${outside} outside every resource)` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** The upstream identity etcdgate acts as: its client certificate's, or one named "etcdgate" when it has none. */
function upstreamIdentity(config: Config): Identity {
  const file = config.upstream.tls.cert;
  if (file !== undefined) {
    try {
      return identityFromDer(new X509Certificate(readFileSync(file)).raw);
    } catch {
      // Recorded as the empty identity below; the pool reported any real problem.
    }
  }
  return { cn: 'etcdgate', o: [], ou: [], dns: [], uri: [], ip: [], serial: '', fingerprint: '', issuer: '', subject: '', notBefore: new Date(0), notAfter: new Date(0) };
}

/**
 * The audit record of one run: who (etcdgate's upstream identity), which prefix, and the
 * counts; never a value.
 */
export function runRecord(
  sub: 'status' | 'rewrite',
  config: Config,
  prefix: Buffer | undefined,
  start: { date: Date; ns: bigint },
  result: { code: number; message: string; details: Readonly<Record<string, number>> },
): CallEvent {
  const identity = upstreamIdentity(config);
  return {
    kind: sub === 'status' ? 'encryption.status' : 'encryption.rewrite',
    service: 'etcdgate.Encryption',
    method: sub === 'status' ? 'Status' : 'Rewrite',
    action: `etcdgate.encryption.${sub}`,
    category: 'database',
    eventType: sub === 'status' ? 'access' : 'change',
    start: start.date,
    durationNs: process.hrtime.bigint() - start.ns,
    peer: { address: '', port: 0, tlsVersion: '', identity },
    roles: [],
    request: {
      op: `encryption_${sub}`,
      ...(prefix === undefined ? {} : { key: prefix, rangeEnd: prefixEnd(prefix) }),
      details: result.details,
    },
    decision: { allowed: true, reason: 'etcdgate upstream identity' },
    result: { code: result.code, message: result.message, ...(result.details['rewritten'] === undefined ? {} : { count: result.details['rewritten'] }) },
  };
}
