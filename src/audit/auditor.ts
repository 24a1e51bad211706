/**
 * The audit trail. The proxy describes every call as a CallEvent (src/audit/types.ts);
 * this folder turns it into one ECS JSON record (record.ts, key-render.ts), queues it in
 * a bounded buffer (delivery-queue.ts) and delivers it to the configured sink
 * (sinks/: stdout, an append-only file, or syslog over TLS). Which records are written
 * is the audit policy's say (audit.level per group, refined by the ordered audit.rules,
 * audit-rules.ts), except that denials are always written. record() never throws and
 * never blocks; `accepting` tells the proxy when the trail cannot keep up and
 * onFailure is "deny". createAuditor() is the only entry point the rest of etcdgate uses.
 */
import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { hostname as osHostname } from 'node:os';
import type { AuditConfig, AuditGroupName } from '../config/types.js';
import { compileAuditRules } from './audit-rules.js';
import type { Metrics } from '../observability/metrics-types.js';
import { DeliveryQueue } from './delivery-queue.js';
import type { AuditLogger, RetryOptions, Transport } from './delivery-queue.js';
import { callOutcome, serializeCallRecord, serializeConnectionRecord, serializeHandshakeRecord } from './record.js';
import { serializeBackupRecord, type BackupAuditEvent } from './backup-record.js';
import { FileTransport } from './sinks/file.js';
import { StreamTransport } from './sinks/stdout.js';
import { SEVERITY, SyslogTransport, syslogFrameText, syslogHeader } from './sinks/syslog.js';
import type { Auditor, CallEvent, ConnectionEvent, HandshakeEvent } from './types.js';

export type { AuditLogger } from './delivery-queue.js';

/** The method groups AuditConfig.level is set per. */
export type AuditGroup = AuditGroupName;

/** What createAuditor needs besides the config. */
export interface AuditorDeps {
  readonly metrics: Metrics;
  readonly logger?: AuditLogger | undefined;
  /** etcdgate's version, written into every record. */
  readonly version: string;
  /** Current policy version (read per record, so reloads show up at once). */
  readonly policyVersion: () => string;
  /** Backoff after a failed write (default 100 ms doubling to 5 s). */
  readonly retry?: RetryOptions | undefined;
  /** Stream of the stdout sink (default process.stdout). */
  readonly stdout?: NodeJS.WritableStream | undefined;
  /** HOSTNAME of syslog headers (default the machine's host name). */
  readonly hostname?: string | undefined;
  /** How long the file sink lets a batch gather records before writing it, ms (default FILE_LINGER_MS). */
  readonly fileLingerMs?: number | undefined;
  /** How often the file sink checks that its file is still the one at the path, ms (default 1 s). */
  readonly fileCheckIntervalMs?: number | undefined;
}

/**
 * The file sink's default linger: none. Its appends are synchronous and cost a few
 * microseconds (src/audit/sinks/file.ts), so the records queued during one turn of the
 * event loop share a write and none waits in memory for a timer. A 2 ms linger paid off
 * while appends were asynchronous (~34 µs of CPU each); with synchronous ones an A/B run
 * showed no gain (Put 175 µs of CPU per request with 2 ms, 166 µs with none).
 */
export const FILE_LINGER_MS = 0;

/** An Auditor whose file sink can be reopened after log rotation (SIGHUP/SIGUSR1). */
export interface ReopenableAuditor extends Auditor {
  /** Makes the file sink write to a freshly opened file at its path; a no-op for other sinks. */
  reopen(): void;
}

/**
 * The group a call's level is set by: the Auth service is "auth", reads "read", writes
 * "write", everything else (leases, maintenance, cluster) "admin".
 */
export function auditGroup(event: Pick<CallEvent, 'category' | 'eventType'>): AuditGroup {
  if (event.category === 'iam') return 'auth';
  if (event.eventType === 'access') return 'read';
  if (event.eventType === 'change') return 'write';
  return 'admin';
}

/**
 * How a record becomes what the sink receives (the queue encodes it to UTF-8 per batch):
 * `end` is written right after the record (a line sink's newline, so the record is one
 * string from the start), then `frame` wraps it (a syslog frame).
 */
interface Encoder {
  readonly end: string;
  frame(record: string, severity: number, msgId: string): string;
}

const lineEncoder: Encoder = { end: '\n', frame: (record) => record };

/**
 * A process-unique prefix plus a counter: ids that are unique and sortable per process,
 * shaped like a UUID, at the cost of one increment per record.
 */
function eventIdGenerator(): () => string {
  const prefix = randomUUID().slice(0, 23);
  let counter = 0;
  return () => {
    counter += 1;
    return `${prefix}-${counter.toString(16).padStart(12, '0')}`;
  };
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

async function makeTransport(config: AuditConfig, deps: AuditorDeps): Promise<{ transport: Transport; encode: Encoder; lingerMs?: number }> {
  const sink = config.sink;
  switch (sink.kind) {
    case 'stdout':
      return { transport: new StreamTransport(deps.stdout ?? process.stdout), encode: lineEncoder };
    case 'file': {
      const transport = new FileTransport(sink.path, { logger: deps.logger, metrics: deps.metrics, checkIntervalMs: deps.fileCheckIntervalMs });
      try {
        await transport.open();
      } catch (err: unknown) {
        // Not fatal: the queue buffers and retries, and onFailure decides once the buffer is full.
        deps.logger?.warn({ sink: transport.description, error: errorText(err) }, 'audit file cannot be opened yet; will retry');
      }
      return { transport, encode: lineEncoder, lingerMs: deps.fileLingerMs ?? FILE_LINGER_MS };
    }
    case 'syslog': {
      const tls = config.syslog;
      if (tls === undefined) throw new Error('audit.syslog (ca, appName) is required for a syslog+tls sink');
      const [ca, cert, key] = await Promise.all([
        readFile(tls.ca),
        tls.cert !== undefined ? readFile(tls.cert) : undefined,
        tls.key !== undefined ? readFile(tls.key) : undefined,
      ]);
      const transport = new SyslogTransport({ host: sink.host, port: sink.port, ca, cert, key });
      const header = syslogHeader(deps.hostname ?? osHostname(), tls.appName, process.pid);
      const encode: Encoder = { end: '', frame: (json, severity, msgId) => syslogFrameText(header, severity, msgId, new Date(), json) };
      return { transport, encode };
    }
  }
}

/**
 * Builds the auditor for `config`. Rejects only on configuration it cannot use (syslog
 * without CA, unreadable CA/cert/key); an unreachable sink is buffered and retried.
 */
export async function createAuditor(config: AuditConfig, deps: AuditorDeps): Promise<ReopenableAuditor> {
  const { transport, encode, lingerMs } = await makeTransport(config, deps);
  const queue = new DeliveryQueue(transport, {
    capacity: config.bufferRecords,
    onFailure: config.onFailure,
    metrics: deps.metrics,
    logger: deps.logger,
    retry: deps.retry,
    lingerMs,
  });
  const enabled: Readonly<Record<AuditGroup, boolean>> = {
    read: config.level.read !== 'none',
    write: config.level.write !== 'none',
    admin: config.level.admin !== 'none',
    auth: config.level.auth !== 'none',
  };
  const rules = compileAuditRules(config.rules);
  /** Whether an allowed call's record is written: the first rule that matches, else its group's level. */
  const wanted = (event: CallEvent): boolean => {
    const group = auditGroup(event);
    if (rules === undefined) return enabled[group];
    const level = rules(event, group, callOutcome(false, event.result.code, event.upstream));
    return level === undefined ? enabled[group] : level !== 'none';
  };
  const nextId = eventIdGenerator();
  const { metrics, logger } = deps;

  const context = (): { eventId: string; version: string; policyVersion: string } => ({
    eventId: nextId(),
    version: deps.version,
    policyVersion: deps.policyVersion(),
  });

  /** A record that could not be built is a failure of the trail, never of the call. */
  const failed = (err: unknown): void => {
    metrics.auditFailure();
    logger?.error({ error: errorText(err) }, 'audit record could not be built');
  };

  return {
    get accepting(): boolean {
      return config.onFailure === 'allow' || queue.accepting;
    },
    get sinkIntact(): boolean {
      return queue.sinkIntact;
    },
    record(event: CallEvent): void {
      try {
        // Denials are written whatever the levels and rules say: they cannot be silenced.
        const denied = !event.decision.allowed || event.kind === 'keepalive.deny';
        if (!denied && !wanted(event)) {
          metrics.auditSkipped();
          return;
        }
        const record = serializeCallRecord(event, context(), encode.end);
        queue.push(encode.frame(record, denied ? SEVERITY.notice : SEVERITY.info, event.kind));
      } catch (err: unknown) {
        failed(err);
      }
    },
    handshakeRefused(event: HandshakeEvent): void {
      try {
        // A refused handshake is a denial: written whatever the levels and rules say.
        const record = serializeHandshakeRecord(event, context(), encode.end);
        queue.push(encode.frame(record, SEVERITY.warning, event.kind ?? 'handshake.refused'));
      } catch (err: unknown) {
        failed(err);
      }
    },
    backup(event: BackupAuditEvent): void {
      try {
        // etcdgate's own maintenance of etcd: in the admin group, like Snapshot itself.
        if (!enabled.admin) return;
        const json = serializeBackupRecord(event, context());
        queue.push(encode.frame(json + encode.end, event.outcome === 'success' ? SEVERITY.info : SEVERITY.warning, event.kind));
      } catch (err: unknown) {
        failed(err);
      }
    },
    connection(event: ConnectionEvent): void {
      try {
        // Connections are authentication events: the auth group's level decides (rules do not apply).
        if (!enabled.auth) {
          metrics.auditSkipped();
          return;
        }
        queue.push(encode.frame(serializeConnectionRecord(event, context(), encode.end), SEVERITY.info, event.kind));
      } catch (err: unknown) {
        failed(err);
      }
    },
    flush: () => queue.flush(),
    close: () => queue.close(),
    reopen: () => queue.reopen(),
  };
}
