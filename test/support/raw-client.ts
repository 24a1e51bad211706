/**
 * A bare gRPC client that speaks etcd's wire format with etcdgate's own protos, for the
 * cases real etcd clients cannot produce on demand: exact bytes, unknown methods,
 * progress requests on a shared watch stream, no client certificate at all.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { decode, encode } from './etcd-messages.js';
import type { Pki } from './pki.js';

const passThrough = (buffer: Buffer): Buffer => buffer;

/** A client for `endpoint` presenting client-NAME (or no certificate when name is null). */
export function rawClient(endpoint: string, pki: Pki, name: string | null): grpc.Client {
  const pair = name === null ? undefined : pki.client(name);
  const credentials = grpc.credentials.createSsl(
    readFileSync(pki.ca),
    pair === undefined ? null : readFileSync(pair.key),
    pair === undefined ? null : readFileSync(pair.cert),
  );
  return new grpc.Client(new URL(endpoint).host, credentials, {
    'grpc.ssl_target_name_override': 'localhost',
    'grpc.max_receive_message_length': -1,
  });
}

/** One unary call with raw bytes; resolves with the response bytes or rejects with the ServiceError. */
export function rawUnary(client: grpc.Client, path: string, request: Buffer, metadata = new grpc.Metadata()): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    client.makeUnaryRequest(path, passThrough, passThrough, request, metadata, {}, (error, response) => {
      if (error !== null || response === undefined) reject(error ?? new Error('no response'));
      else resolve(response);
    });
  });
}

/** A unary call with messages given as objects: `call(client, 'KV', 'Range', 'RangeRequest', {...}, 'RangeResponse')`. */
export async function callEtcd(
  client: grpc.Client,
  service: string,
  method: string,
  request: [type: string, value: Record<string, unknown>],
  responseType: string,
  metadata?: grpc.Metadata,
): Promise<Record<string, unknown>> {
  const bytes = await rawUnary(client, `/etcdserverpb.${service}/${method}`, encode(`etcdserverpb.${request[0]}`, request[1]), metadata);
  return decode(`etcdserverpb.${responseType}`, bytes);
}

/** Opens a raw Watch stream; messages are encoded/decoded by the caller. */
export function rawWatch(client: grpc.Client, metadata = new grpc.Metadata()): grpc.ClientDuplexStream<Buffer, Buffer> {
  const stream = client.makeBidiStreamRequest('/etcdserverpb.Watch/Watch', passThrough, passThrough, metadata);
  // Tests end streams by cancelling them; the resulting CANCELLED status is expected.
  stream.on('error', () => undefined);
  return stream;
}

/** Collects decoded WatchResponses from a raw watch stream until `predicate` holds for the list (or times out). */
export function collectWatch(
  stream: grpc.ClientDuplexStream<Buffer, Buffer>,
  predicate: (responses: Record<string, unknown>[]) => boolean,
  timeoutMs = 10_000,
): Promise<Record<string, unknown>[]> {
  const responses: Record<string, unknown>[] = [];
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      stream.removeListener('data', onData);
      reject(new Error(`watch: condition not met in ${timeoutMs} ms; got ${JSON.stringify(responses)}`));
    }, timeoutMs);
    const onData = (chunk: Buffer): void => {
      responses.push(decode('etcdserverpb.WatchResponse', chunk));
      if (predicate(responses)) {
        clearTimeout(timer);
        stream.removeListener('data', onData);
        resolve(responses);
      }
    };
    stream.on('data', onData);
  });
}
