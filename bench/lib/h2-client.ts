/**
 * The load generator's gRPC client: etcdgate's own HTTP/2 client (src/transport), one
 * TLS connection per BenchConnection. It costs a few microseconds per call, so the
 * generator is not what limits a run (the report shows its CPU). Answers are still
 * checked by the workloads (status OK, the right key and value) with the bench's own
 * decoders (messages.ts), independent of etcdgate's.
 */
import { readFileSync } from 'node:fs';
import { GrpcClientCall, requestHeaderBlock, type CallOutcome } from '../../src/transport/grpc/client-call.js';
import { ClientSession } from '../../src/transport/http2/client.js';
import { DEFAULT_CONNECTION_OPTIONS } from '../../src/transport/http2/connection.js';

export interface BenchTls {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/** A failed call: its gRPC code and message. */
export class CallError extends Error {
  constructor(readonly code: number, details: string) {
    super(`${code}: ${details}`);
  }
}

export class BenchConnection {
  private readonly session: ClientSession;
  private readonly blocks = new Map<string, Buffer>();
  private readonly authority: string;
  readonly ready: Promise<void>;

  constructor(address: string, tls: BenchTls) {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[|\]$/gu, '');
    const port = Number(address.slice(colon + 1));
    this.authority = address;
    let ready = (): void => undefined;
    let failed = (_error: Error): void => undefined;
    this.ready = new Promise<void>((resolve, reject) => {
      ready = resolve;
      failed = reject;
    });
    this.session = new ClientSession(
      {
        host,
        port,
        ca: readFileSync(tls.ca),
        cert: readFileSync(tls.cert),
        key: readFileSync(tls.key),
        serverName: 'localhost',
        dialTimeoutMs: 10_000,
        keepaliveTimeMs: 0,
        keepaliveTimeoutMs: 10_000,
        connection: { ...DEFAULT_CONNECTION_OPTIONS, streamWindow: 4 * 1024 * 1024, connectionWindow: 64 * 1024 * 1024, idleFrameBurst: 1e9, idleFramesPerSecond: 1e9 },
      },
      {
        onReady: () => ready(),
        onGoaway: () => undefined,
        onClose: (_session, _error, why) => failed(new Error(`connection closed: ${why}`)),
      },
    );
    this.ready.catch(() => undefined);
  }

  private block(path: string): Buffer {
    let block = this.blocks.get(path);
    if (block === undefined) {
      block = requestHeaderBlock(this.authority, path, 'etcdgate-bench');
      this.blocks.set(path, block);
    }
    return block;
  }

  /** One unary call: the response message, or a CallError. */
  unary(path: string, request: Buffer): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      let response: Buffer | undefined;
      const call = GrpcClientCall.start(
        this.session.connection,
        { headerBlock: this.block(path), maxRecvBytes: -1 },
        {
          onHeaders: () => undefined,
          onMessage: (_call, message) => {
            response = message;
          },
          onEnd: (_call, outcome: CallOutcome) => {
            if (outcome.code === 0 && response !== undefined) resolve(response);
            else reject(new CallError(outcome.code, outcome.details));
          },
        },
      );
      if (call === undefined) {
        reject(new CallError(14, 'connection takes no new stream'));
        return;
      }
      call.sendMessage(request, true);
    });
  }

  /** A bidirectional stream whose messages go to `onMessage`. */
  stream(path: string, onMessage: (message: Buffer) => void): { write(message: Buffer): void; cancel(): void } {
    const call = GrpcClientCall.start(
      this.session.connection,
      { headerBlock: this.block(path), maxRecvBytes: -1 },
      { onHeaders: () => undefined, onMessage: (_call, message) => onMessage(message), onEnd: () => undefined },
    );
    if (call === undefined) throw new CallError(14, 'connection takes no new stream');
    return { write: (message) => void call.sendMessage(message), cancel: () => call.cancel() };
  }

  close(): void {
    this.session.close('bench done');
  }
}
