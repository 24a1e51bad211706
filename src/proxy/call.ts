/**
 * What the proxy needs of a call, whichever protocol carried it: gRPC over etcdgate's
 * HTTP/2 (src/transport/grpc/server-call.ts), or, later, JSON over HTTP. Messages are
 * etcd's protobuf bytes either way, so one gate pipeline serves every protocol.
 */
import type { HttpTransport } from '../audit/types.js';
import type { Status } from '../transport/grpc/status.js';

/** Why a call ended without the proxy ending it. */
export type CancelReason = 'client-reset' | 'connection-lost' | 'deadline' | 'read-timeout' | 'unreadable';

/** What the proxy hears from a call. */
export interface RpcHandler {
  /** One request message; `framed` is the message as the client framed it, when it can be forwarded as is. */
  onMessage(call: RpcCall, message: Buffer, framed: Buffer | undefined): void;
  /** The client will send no more messages. */
  onHalfClose(call: RpcCall): void;
  /** The call ended without the proxy: `status` is what the client got. */
  onCancel(call: RpcCall, reason: CancelReason, status: Status): void;
  /** Queued response data went out: more may be sent. */
  onDrain(call: RpcCall): void;
}

export interface RpcCall {
  /** The gRPC method path, e.g. "/etcdserverpb.KV/Range". */
  readonly path: string;
  /** Absolute deadline, ms since the epoch; undefined when the client set none. */
  readonly deadline: number | undefined;
  /** The status the client got, once the call has ended. */
  readonly ended: Status | undefined;
  /** Response bytes queued and not yet sent to the client. */
  readonly queuedBytes: number;
  /** Set when the call came over the JSON gateway (HTTP version and path), for records and metrics. */
  readonly http?: HttpTransport | undefined;
  /** The first value of request header `name` (lower-case). */
  header(name: string): string | undefined;
  /** Starts delivery to `handler`; `streaming` for bidirectional calls (see GrpcServerCall.attach). */
  attach(handler: RpcHandler, streaming: boolean): void;
  /** Stops and restarts reading the client's messages (backpressure). */
  pause(): void;
  resume(): void;
  sendHeaders(metadata?: readonly string[]): void;
  /** Sends one response message; false when the caller should wait for onDrain. */
  sendMessage(message: Buffer): boolean;
  /** sendMessage of a message given as parts, `length` bytes in all (a rewritten answer, not written out whole). */
  sendMessageParts(parts: readonly Buffer[], length: number): boolean;
  /** Sends bytes that are already gRPC-framed response messages (etcd's, unchanged). */
  sendFramed(framed: Buffer): boolean;
  /** Ends the call; returns the status the client got. */
  end(status: Status): Status;
}
