/**
 * The baseline the performance issue names: a bare grpc-js pass-through with identity
 * codecs, its own mTLS, and no policy, no audit, no metrics, for unary calls only (the
 * benchmark's Range/Put/Txn). It reads the same config file etcdgate gets, so the
 * benchmark starts it like an etcdgate build (`--passthrough`). Not part of the product.
 */
import { readFileSync } from 'node:fs';
import * as grpc from '@grpc/grpc-js';
import { parse } from 'yaml';
import { METHODS } from '../../src/etcd/methods.js';

interface BenchConfig {
  server: { tls: { cert: string; key: string; clientCA: string } };
  upstream: { endpoints: string[]; tls: { ca: string; cert: string; key: string } };
}

const passThrough = (buffer: Buffer): Buffer => buffer;
const configFile = process.argv[process.argv.indexOf('--config') + 1] ?? '';
const config = parse(readFileSync(configFile, 'utf8')) as BenchConfig;
const upstreamUrl = new URL(config.upstream.endpoints[0] ?? '');
const upstream = new grpc.Client(
  upstreamUrl.host,
  grpc.credentials.createSsl(readFileSync(config.upstream.tls.ca), readFileSync(config.upstream.tls.key), readFileSync(config.upstream.tls.cert)),
  { 'grpc.max_receive_message_length': -1, 'grpc.enable_channelz': 0, 'grpc.enable_retries': 0 },
);

const server = new grpc.Server({ 'grpc.max_receive_message_length': -1, 'grpc.enable_channelz': 0 });
for (const spec of METHODS.values()) {
  if (spec.shape !== 'unary') continue;
  server.register<Buffer, Buffer>(
    spec.path,
    (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      const forwarded = upstream.makeUnaryRequest(spec.path, passThrough, passThrough, call.request, new grpc.Metadata(), (error, response) => {
        if (error !== null) callback(error);
        else callback(null, response);
      });
      call.once('cancelled', () => forwarded.cancel());
    },
    passThrough,
    passThrough,
    'unary',
  );
}
const credentials = grpc.ServerCredentials.createSsl(readFileSync(config.server.tls.clientCA), [
  { cert_chain: readFileSync(config.server.tls.cert), private_key: readFileSync(config.server.tls.key) },
], true);
server.bindAsync('127.0.0.1:0', credentials, (error, port) => {
  if (error !== null) throw error;
  // The benchmark waits for this line (etcdgate's own startup line has the same shape).
  process.stderr.write(`${JSON.stringify({ port, msg: 'etcdgate listening' })}\n`);
});
process.on('SIGTERM', () => server.tryShutdown(() => process.exit(0)));
