/**
 * A syslog-over-TLS server for audit sink tests: it accepts RFC 5425 octet-counted frames
 * ("LEN SP MSG") on 127.0.0.1 and keeps the JSON body of each message, in arrival order.
 */
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import * as tls from 'node:tls';
import type { CertPair } from './pki.js';

/** A running receiver. */
export interface SyslogReceiver {
  /** The port it is bound to. */
  readonly port: number;
  /** Every JSON record received so far (the array grows as frames arrive). */
  readonly records: Array<Record<string, unknown>>;
  /** Drops every connection and stops listening. */
  close(): Promise<void>;
}

/** Listens on 127.0.0.1:`port` with `identity` as its server certificate. */
export function startSyslogReceiver(port: number, identity: CertPair): Promise<SyslogReceiver> {
  const records: Array<Record<string, unknown>> = [];
  const sockets = new Set<tls.TLSSocket>();
  const server = tls.createServer({ cert: readFileSync(identity.cert), key: readFileSync(identity.key) }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let pending = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = Buffer.concat([pending, chunk]);
      for (;;) {
        const space = pending.indexOf(0x20);
        if (space < 0) return;
        const length = Number(pending.subarray(0, space).toString('latin1'));
        if (pending.length < space + 1 + length) return;
        const message = pending.subarray(space + 1, space + 1 + length).toString('utf8');
        pending = pending.subarray(space + 1 + length);
        // "<PRI>1 TS HOST APP PROCID MSGID - JSON": the JSON follows the nil structured data.
        records.push(JSON.parse(message.slice(message.indexOf(' - {') + 3)) as Record<string, unknown>);
      }
    });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      resolve({
        port: (server.address() as AddressInfo).port,
        records,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
