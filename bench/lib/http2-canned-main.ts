/**
 * The floor under any Node server of unary gRPC calls on this machine: a `node:http2`
 * TLS server that answers every call with the same canned RangeResponse (one key, a
 * 512-byte value) without calling etcd at all. What it costs per call is what the
 * server half of a Node proxy costs before it does anything (a cache hit can cost no
 * less), and the throughput it reaches shows how far the load generator can push.
 * Started by the benchmark like an etcdgate build (`--http2-canned`); not part of the
 * product.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { parse } from 'yaml';
import { mtlsServerOptions } from './mtls-server.js';

interface BenchConfig {
  server: { tls: { cert: string; key: string; clientCA: string } };
}

const configFile = process.argv[process.argv.indexOf('--config') + 1] ?? '';
const config = parse(readFileSync(configFile, 'utf8')) as BenchConfig;
/** As etcdgate answers: trailers follow, no Date header (sendDate is a Node option its types omit). */
const RESPOND_OPTIONS = { waitForTrailers: true, sendDate: false };

function varint(value: number): Buffer {
  const bytes: number[] = [];
  let rest = value;
  while (rest > 0x7f) {
    bytes.push((rest & 0x7f) | 0x80);
    rest >>>= 7;
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** A length-delimited protobuf field. */
function field(tag: number, bytes: Buffer): Buffer {
  return Buffer.concat([varint(tag), varint(bytes.length), bytes]);
}

// RangeResponse { kvs (2): KeyValue { key (1), value (5) }, count (4): 1 }, framed once.
const keyValue = Buffer.concat([field(0x0a, Buffer.from('/registry/pods/bench/pod-0')), field(0x2a, Buffer.alloc(512, 0x61))]);
const message = Buffer.concat([field(0x12, keyValue), Buffer.from([0x20, 0x01])]);
const frame = Buffer.alloc(5 + message.length);
frame.writeUInt32BE(message.length, 1);
message.copy(frame, 5);

const server = http2.createSecureServer(mtlsServerOptions(config.server.tls));
server.on('stream', (stream) => {
  stream.on('error', () => undefined);
  stream.on('data', () => undefined);
  stream.on('end', () => {
    if (stream.destroyed || stream.closed) return;
    stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, RESPOND_OPTIONS);
    stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
    stream.end(frame);
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  // The benchmark waits for this line (etcdgate's own startup line has the same shape).
  process.stderr.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0, msg: 'etcdgate listening' })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
