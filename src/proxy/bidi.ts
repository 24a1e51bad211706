/**
 * What every stream handler shares: the pass-through codec (messages stay the bytes they
 * were on the wire) and the opening of a bidirectional stream to etcd once the caller is
 * identified, the audit sink can take records and an endpoint is available.
 */
import type * as grpc from '@grpc/grpc-js';
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import { callerOf, type Caller, type OpenStream, type ProxyContext } from './context.js';
import { upstreamMetadata } from './metadata.js';
import { AUDIT_UNAVAILABLE, endWithStatus, MALFORMED, NO_UPSTREAM } from './status.js';

/** The codec of every registered method and upstream call: bytes in, the same bytes out. */
export const passThrough = (buffer: Buffer): Buffer => buffer;

/** A stream relay, given the identified caller, the client's call and the stream opened to etcd. */
export type BidiRelay = (caller: Caller, call: grpc.ServerDuplexStream<Buffer, Buffer>, upstream: grpc.ClientDuplexStream<Buffer, Buffer>) => void;

/** Builds the grpc-js handler of a bidirectional method from its relay. */
export function bidiHandler(context: ProxyContext, spec: MethodSpec, relay: BidiRelay): grpc.handleBidiStreamingCall<Buffer, Buffer> {
  return (call) => {
    const caller = callerOf(context, call);
    if ('code' in caller) return endWithStatus(call, caller);
    if (!context.auditor.accepting) return endWithStatus(call, AUDIT_UNAVAILABLE);
    const endpoint = context.pool.pick();
    if (endpoint === undefined) return endWithStatus(call, NO_UPSTREAM);
    relay(caller, call, endpoint.client.makeBidiStreamRequest(spec.path, passThrough, passThrough, upstreamMetadata(call.metadata)));
  };
}

/** Decodes one client message of a stream; a malformed one ends the stream with INVALID_ARGUMENT and gives undefined. */
export function decodeStreamMessage(spec: MethodSpec, message: Buffer, stream: OpenStream): DecodedRequest | undefined {
  try {
    return spec.decode(message);
  } catch (error: unknown) {
    if (!(error instanceof DecodeError)) throw error;
    stream.abort(MALFORMED);
    return undefined;
  }
}
