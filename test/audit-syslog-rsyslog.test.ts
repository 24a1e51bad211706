/**
 * End to end against a real rsyslog: rsyslogd (Debian's, with the GnuTLS netstream
 * driver) listens with imtcp over TLS on a loopback port with a throwaway certificate;
 * the auditor's syslog sink sends records of every kind; every event.id must arrive
 * exactly once, as parseable JSON, with the RFC 5424 header fields rsyslog parsed from
 * it (facility authpriv, severity by outcome, APP-NAME, MSGID). rsyslogd runs in the
 * foreground with only the temp config written here (no system config, no local
 * sockets). Without rsyslogd the test is skipped locally and FAILS under CI=true.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuditor } from '../src/audit/auditor.js';
import type { ReopenableAuditor } from '../src/audit/auditor.js';
import type { Metrics } from '../src/observability/metrics-types.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';
import { callEvent, handshakeEvent } from './support/audit-events.js';
import { makePki } from './support/pki.js';
import type { Pki } from './support/pki.js';
import { freePort } from './support/ports.js';

/** rsyslogd on PATH or in Debian's /usr/sbin (not always on a non-root PATH). */
function findRsyslogd(): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(path.delimiter), '/usr/sbin', '/sbin'];
  for (const dir of dirs) {
    if (dir === '') continue;
    const candidate = path.join(dir, 'rsyslogd');
    if (existsSync(candidate)) return candidate;
  }
  return undefined;
}

const rsyslogd = findRsyslogd();
const inCi = process.env['CI'] === 'true';

interface Rsyslog {
  readonly port: number;
  readonly output: string;
  readonly log: string;
  stop(): Promise<void>;
}

/** Resolves once something accepts TCP connections on the port, or rejects if the process exits first. */
async function waitListening(port: number, child: ChildProcess, log: string): Promise<void> {
  for (let attempt = 0; attempt < 500; attempt += 1) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const text = await readFile(log, 'utf8').catch(() => '');
      throw new Error(`rsyslogd exited (${String(child.exitCode ?? child.signalCode)}) before listening:\n${text}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`rsyslogd never listened on 127.0.0.1:${String(port)}`);
}

async function startRsyslog(binary: string, dir: string, pki: Pki): Promise<Rsyslog> {
  const work = path.join(dir, 'work');
  await mkdir(work, { recursive: true });
  const output = path.join(dir, 'received.log');
  const log = path.join(dir, 'rsyslogd.log');
  // A port probed free can be taken before rsyslogd binds it: try a few.
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const port = await freePort();
    const config = path.join(dir, `rsyslog-${String(attempt)}.conf`);
    await writeFile(
      config,
      [
        'global(',
        `  workDirectory="${work}"`,
        // Audit records of large Txns exceed rsyslog's 8 KiB default.
        '  maxMessageSize="256k"',
        '  defaultNetstreamDriver="gtls"',
        `  defaultNetstreamDriverCAFile="${pki.ca}"`,
        `  defaultNetstreamDriverCertFile="${pki.etcdServer.cert}"`,
        `  defaultNetstreamDriverKeyFile="${pki.etcdServer.key}"`,
        ')',
        'module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")',
        `input(type="imtcp" address="127.0.0.1" port="${String(port)}")`,
        'template(name="auditline" type="string" string="%syslogfacility-text%|%syslogseverity-text%|%app-name%|%msgid%|%msg%\\n")',
        `action(type="omfile" file="${output}" template="auditline")`,
        '',
      ].join('\n'),
    );
    const logFd = openSync(log, 'a');
    const child = spawn(binary, ['-n', '-f', config, '-i', path.join(dir, 'rsyslogd.pid')], {
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    try {
      await waitListening(port, child, log);
      return {
        port,
        output,
        log,
        stop: () =>
          new Promise<void>((resolve) => {
            if (child.exitCode !== null || child.signalCode !== null) {
              resolve();
              return;
            }
            const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
            child.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
            child.kill('SIGTERM');
          }),
      };
    } catch (err: unknown) {
      lastError = err;
      child.kill('SIGKILL');
    }
  }
  throw lastError instanceof Error ? lastError : new Error('rsyslogd did not start');
}

interface Received {
  facility: string;
  severity: string;
  appName: string;
  msgId: string;
  record: { event: { id: string; outcome: string }; etcd?: { request?: { key?: string; key_base64?: string } } };
}

async function readReceived(file: string): Promise<Received[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const parts = line.split('|');
      const [facility = '', severity = '', appName = '', msgId = ''] = parts;
      // The JSON itself may contain "|": it is everything after the fourth separator.
      const json = parts.slice(4).join('|').trim();
      return { facility, severity, appName, msgId, record: JSON.parse(json) as Received['record'] };
    });
}

describe.skipIf(rsyslogd === undefined && !inCi)('syslog sink against rsyslog', () => {
  let pki: Pki;
  let dir = '';
  let server: Rsyslog | undefined;
  let auditor: ReopenableAuditor | undefined;

  beforeAll(async () => {
    if (rsyslogd === undefined) {
      throw new Error('rsyslogd not found: install Debian packages rsyslog and rsyslog-gnutls (required under CI=true)');
    }
    pki = await makePki();
    dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-rsyslog-'));
    server = await startRsyslog(rsyslogd, dir, pki);
  });

  afterAll(async () => {
    await auditor?.close();
    await server?.stop();
    await pki?.remove();
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  });

  it('receives every record exactly once, as JSON, with RFC 5424 header fields', async () => {
    if (server === undefined) throw new Error('rsyslogd not started');
    let written = 0;
    const metrics: Metrics = { ...NOOP_METRICS, auditWritten: () => (written += 1) };
    auditor = await createAuditor(
      {
        sink: { kind: 'syslog', host: '127.0.0.1', port: server.port },
        onFailure: 'deny',
        level: { read: 'metadata', write: 'metadata', admin: 'metadata', auth: 'metadata' },
        bufferRecords: 10_000,
        syslog: { ca: pki.ca, appName: 'etcdgate' },
      },
      { metrics, version: '0.1.0', policyVersion: () => 'p1', hostname: 'audit-test-host' },
    );

    const total = 600;
    for (let i = 0; i < total; i += 1) {
      if (i % 50 === 0) auditor.handshakeRefused(handshakeEvent());
      else if (i % 7 === 0) {
        auditor.record(
          callEvent({
            method: 'Range',
            action: 'etcd.kv.range',
            eventType: 'access',
            request: { op: 'range', key: Buffer.from(`/tenants/b/größe|${String(i)}`) },
            decision: { allowed: false, reason: 'range not covered' },
            result: { code: 7, message: 'etcdserver: permission denied' },
          }),
        );
      } else if (i % 11 === 0) {
        auditor.record(callEvent({ request: { op: 'put', key: Buffer.from([0xff, 0x00, i & 0xff]) } }));
      } else {
        auditor.record(callEvent({ kind: i % 2 === 0 ? 'call' : 'watch.end', watchId: String(i) }));
      }
    }
    await auditor.flush();
    expect(written).toBe(total);

    let received: Received[] = [];
    for (let poll = 0; poll < 500 && received.length < total; poll += 1) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      received = await readReceived(server.output);
    }
    const ids = received.map((entry) => entry.record.event.id);
    expect(ids).toHaveLength(total);
    expect(new Set(ids).size).toBe(total);

    for (const entry of received) {
      expect(entry.facility).toBe('authpriv');
      expect(entry.appName).toBe('etcdgate');
      if (entry.msgId === 'handshake.refused') expect(entry.severity).toBe('warning');
      else if (entry.record.event.outcome === 'failure') expect(entry.severity).toBe('notice');
      else expect(entry.severity).toBe('info');
    }
    const msgIds = new Set(received.map((entry) => entry.msgId));
    expect(msgIds).toEqual(new Set(['call', 'watch.end', 'handshake.refused']));
    // Non-ASCII text keys and binary keys survive the trip unaltered.
    expect(received.some((entry) => entry.record.etcd?.request?.key?.startsWith('/tenants/b/größe|') === true)).toBe(true);
    expect(received.some((entry) => entry.record.etcd?.request?.key_base64?.startsWith('/wA') === true)).toBe(true);
  });
});
