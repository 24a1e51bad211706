/**
 * The syslog sink: RFC 5424 messages carrying the JSON record as MSG, sent over TCP+TLS
 * with octet-counted framing (RFC 6587 section 3.4.1: "LEN SP MSG"), which keeps a
 * record intact whatever characters it contains. The connection is opened on the first
 * write and again after any failure; the delivery queue supplies backoff and buffering.
 * Delivery is at least once: a batch whose write failed is sent again in full on the
 * next connection, and syslog has no acknowledgement, so records written just before
 * the server drops the connection can still be lost (as with every syslog-over-TCP sender).
 */
import { isIP } from 'node:net';
import { connect } from 'node:tls';
import type { ConnectionOptions, TLSSocket } from 'node:tls';
import type { Transport } from '../delivery-queue.js';

/** Syslog facility authpriv (RFC 5424 table 1): security/authorization messages, kept private. */
export const FACILITY_AUTHPRIV = 10;

/** RFC 5424 severities used by the audit trail. */
export const SEVERITY = Object.freeze({ warning: 4, notice: 5, info: 6 } as const);

/** The per-process parts of an RFC 5424 header. */
export interface SyslogHeader {
  readonly facility: number;
  readonly hostname: string;
  readonly appName: string;
  readonly procId: string;
}

/** A header field as RFC 5424 allows it: printable US-ASCII without spaces, bounded, "-" when empty. */
export function headerField(value: string, maxLength: number): string {
  const clean = value.replace(/[^\x21-\x7e]/gu, '').slice(0, maxLength);
  return clean === '' ? '-' : clean;
}

/** Builds the header once, so each message only formats PRI, timestamp and MSGID. */
export function syslogHeader(hostname: string, appName: string, procId: number, facility = FACILITY_AUTHPRIV): SyslogHeader {
  return {
    facility,
    hostname: headerField(hostname, 255),
    appName: headerField(appName, 48),
    procId: headerField(String(procId), 128),
  };
}

/**
 * One octet-counted frame as text, to be sent as UTF-8:
 * `LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG` where MSG is the JSON
 * record (no structured data) and LEN counts the UTF-8 bytes of the message.
 */
export function syslogFrameText(header: SyslogHeader, severity: number, msgId: string, time: Date, json: string): string {
  const pri = header.facility * 8 + severity;
  const message = `<${String(pri)}>1 ${time.toISOString()} ${header.hostname} ${header.appName} ${header.procId} ${headerField(msgId, 32)} - ${json}`;
  return `${String(Buffer.byteLength(message, 'utf8'))} ${message}`;
}

/** syslogFrameText's frame as the bytes that go on the wire. */
export function syslogFrame(header: SyslogHeader, severity: number, msgId: string, time: Date, json: string): Buffer {
  return Buffer.from(syslogFrameText(header, severity, msgId, time, json), 'utf8');
}

/** Where and how to reach the syslog server. */
export interface SyslogTarget {
  readonly host: string;
  readonly port: number;
  /** PEM CA bundle the server's certificate must chain to (the system store is not used). */
  readonly ca: Buffer;
  readonly cert?: Buffer | undefined;
  readonly key?: Buffer | undefined;
  /** Bound on TCP connect plus TLS handshake, ms. */
  readonly connectTimeoutMs?: number | undefined;
}

/** A TLS connection to a syslog server, (re)opened on demand by write(). */
export class SyslogTransport implements Transport {
  readonly description: string;
  readonly #target: SyslogTarget;
  #socket: TLSSocket | null = null;
  #closed = false;

  constructor(target: SyslogTarget) {
    this.#target = target;
    this.description = `syslog+tls ${target.host}:${String(target.port)}`;
  }

  async write(chunk: Buffer): Promise<void> {
    if (this.#closed) throw new Error('syslog sink closed');
    const socket = this.#socket ?? (await this.#connect());
    await new Promise<void>((resolve, reject) => {
      socket.write(chunk, (err?: Error | null) => {
        if (err) {
          // Whatever state the connection is in, the next attempt starts a fresh one.
          socket.destroy();
          if (this.#socket === socket) this.#socket = null;
          reject(err);
        } else {
          resolve();
        }
      });
    });
  }

  reopen(): void {
    // A network sink has nothing to reopen; a broken connection is replaced on the next write.
  }

  async close(): Promise<void> {
    this.#closed = true;
    const socket = this.#socket;
    this.#socket = null;
    if (socket === null || socket.destroyed) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => socket.destroy(), 2_000);
      socket.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      socket.end();
    });
  }

  #connect(): Promise<TLSSocket> {
    const target = this.#target;
    const options: ConnectionOptions = {
      host: target.host,
      port: target.port,
      ca: target.ca,
      minVersion: 'TLSv1.2',
      // SNI carries host names only; an IP address is still checked against the certificate's IP SANs.
      ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
      ...(target.cert !== undefined ? { cert: target.cert } : {}),
      ...(target.key !== undefined ? { key: target.key } : {}),
    };
    return new Promise((resolve, reject) => {
      const socket = connect(options);
      const timer = setTimeout(() => {
        socket.destroy(new Error(`syslog connect timed out after ${String(target.connectTimeoutMs ?? 10_000)} ms`));
      }, target.connectTimeoutMs ?? 10_000);
      const onError = (err: Error): void => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      socket.once('error', onError);
      socket.once('secureConnect', () => {
        clearTimeout(timer);
        socket.off('error', onError);
        if (this.#closed) {
          socket.destroy();
          reject(new Error('syslog sink closed'));
          return;
        }
        // Errors after the handshake surface through write callbacks; this keeps them from crashing the process.
        socket.on('error', () => undefined);
        socket.once('close', () => {
          if (this.#socket === socket) this.#socket = null;
        });
        socket.setKeepAlive(true, 30_000);
        // The server sends nothing meaningful; drain so its bytes never pile up.
        socket.resume();
        this.#socket = socket;
        resolve(socket);
      });
    });
  }
}
