/**
 * The decoder reads what Go's HPACK encoder (golang.org/x/net/http2/hpack, the one grpc-go
 * and so etcdctl, kube-apiserver and etcd use) writes: a request block captured from
 * etcdctl 3.4.23, and the 256 requests and 512 answer blocks of bench/hpack-blocks (written
 * by bench/hpack-blocks/main.go), decoded in order on one connection each, so every
 * dynamic-table reference and eviction Go made must resolve to the field it meant.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { HpackDecoder } from '../src/transport/hpack/index.js';

const fixture = JSON.parse(readFileSync(new URL('../bench/hpack-blocks/grpc-go-blocks.json', import.meta.url), 'utf8')) as {
  requests: string[];
  responses: string[];
};
const limits = { maxTableSize: 4096, maxHeaderListSize: 65536 };

describe("Go's HPACK encoder -> etcdgate's decoder", () => {
  it('reads the request block etcdctl 3.4.23 sent for `etcdctl get foo` (captured off a plain TCP listener)', () => {
    const block = Buffer.from(
      '8386459060a924882d9dcb6571af9b8b1b4754c5418b089d5c0b8170dc132ebeff5f8b1d75d0620d263d4c4d65647a8b9acac8b4c7602bb2caecff' +
        '40027465864d833505b11f40899acac8b24d494f6a7f8613e213e07edf408d25062d495875996ee5b1063d5f03332e34',
      'hex',
    );
    expect(new HpackDecoder(limits).decode(block).fields).toEqual([
      ':method', 'POST', ':scheme', 'http', ':path', '/etcdserverpb.KV/Range', ':authority', '127.0.0.1:23799',
      'content-type', 'application/grpc', 'user-agent', 'grpc-go/1.33.3', 'te', 'trailers',
      'grpc-timeout', '2922909u', 'client-api-version', '3.4',
    ]);
  });

  it('reads 256 requests on one connection as main.go wrote them, table hits and evictions included', () => {
    const paths = ['/etcdserverpb.KV/Range', '/etcdserverpb.KV/Put', '/etcdserverpb.KV/Txn'];
    const decoder = new HpackDecoder(limits);
    let octets = 0;
    fixture.requests.forEach((hex, i) => {
      const block = Buffer.from(hex, 'hex');
      octets += block.length;
      expect(decoder.decode(block).fields, `request ${i}`).toEqual([
        ':method', 'POST', ':scheme', 'https', ':path', paths[i % 3], ':authority', '127.0.0.1:2379',
        'content-type', 'application/grpc', 'user-agent', 'grpc-go/1.33.3', 'te', 'trailers',
        'grpc-timeout', `${4999000 + ((i * 7919) % 1000)}u`, 'client-api-version', '3.4',
      ]);
    });
    expect(fixture.requests).toHaveLength(256);
    // Mostly table hits. Go indexes every grpc-timeout, so 256 x ~52 octets pass through a
    // 4096-octet table: along the way entries were evicted and re-inserted.
    expect(octets / 256).toBeLessThan(30);
  });

  it("reads 256 answers' headers and trailers on one connection", () => {
    const decoder = new HpackDecoder(limits);
    fixture.responses.forEach((hex, i) => {
      expect(decoder.decode(Buffer.from(hex, 'hex')).fields, `block ${i}`).toEqual(
        i % 2 === 0 ? [':status', '200', 'content-type', 'application/grpc'] : ['grpc-status', '0', 'grpc-message', ''],
      );
    });
  });
});
