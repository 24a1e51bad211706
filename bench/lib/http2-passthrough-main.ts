/**
 * A second reference point beside the grpc-js one (passthrough-main.ts): the least a
 * Node proxy can do per unary call. A `node:http2` TLS server takes each call's bytes and
 * sends them to etcd over one `node:http2` session, then relays etcd's answer and
 * grpc-status. No policy, no audit, no metrics, no limits, no deadlines, no failover:
 * what it costs is Node's own HTTP/2 and TLS work on both legs. Started by the benchmark
 * like an etcdgate build (`--http2-passthrough`); not part of the product.
 */
import { readFileSync } from 'node:fs';
import * as http2 from 'node:http2';
import { parse } from 'yaml';
import { mtlsServerOptions } from './mtls-server.js';

interface BenchConfig {
  server: { tls: { cert: string; key: string; clientCA: string } };
  upstream: { endpoints: string[]; tls: { ca: string; cert: string; key: string } };
}

const configFile = process.argv[process.argv.indexOf('--config') + 1] ?? '';
const config = parse(readFileSync(configFile, 'utf8')) as BenchConfig;
const WINDOW_BYTES = 4 * 1024 * 1024;
/** As etcdgate answers: trailers follow, no Date header (sendDate is a Node option its types omit). */
const RESPOND_OPTIONS = { waitForTrailers: true, sendDate: false };

const upstream = http2.connect(config.upstream.endpoints[0] ?? '', {
  ca: readFileSync(config.upstream.tls.ca),
  cert: readFileSync(config.upstream.tls.cert),
  key: readFileSync(config.upstream.tls.key),
  servername: '',
  settings: { initialWindowSize: WINDOW_BYTES },
});
upstream.on('error', (error) => {
  process.stderr.write(`upstream session failed: ${error.message}\n`);
  process.exit(1);
});

const server = http2.createSecureServer(mtlsServerOptions(config.server.tls, { settings: { initialWindowSize: WINDOW_BYTES } }));

function concat(chunks: Buffer[]): Buffer {
  return chunks.length === 1 && chunks[0] !== undefined ? chunks[0] : Buffer.concat(chunks);
}

server.on('stream', (stream, headers) => {
  const request: Buffer[] = [];
  stream.on('error', () => undefined);
  stream.on('data', (chunk: Buffer) => request.push(chunk));
  stream.on('end', () => {
    const call = upstream.request({ ':method': 'POST', ':path': headers[':path'], 'content-type': 'application/grpc', te: 'trailers' });
    const response: Buffer[] = [];
    let status = '2';
    call.on('error', () => undefined);
    call.on('response', (incoming) => {
      if (incoming['grpc-status'] !== undefined) status = String(incoming['grpc-status']);
    });
    call.on('trailers', (trailers) => {
      status = String(trailers['grpc-status'] ?? '2');
    });
    call.on('data', (chunk: Buffer) => response.push(chunk));
    call.on('close', () => {
      if (stream.destroyed || stream.closed) return;
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, RESPOND_OPTIONS);
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': status }));
      stream.end(concat(response));
    });
    call.end(concat(request));
  });
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  // The benchmark waits for this line (etcdgate's own startup line has the same shape).
  process.stderr.write(`${JSON.stringify({ port: typeof address === 'object' && address !== null ? address.port : 0, msg: 'etcdgate listening' })}\n`);
});
process.on('SIGTERM', () => {
  upstream.close();
  server.close(() => process.exit(0));
});
