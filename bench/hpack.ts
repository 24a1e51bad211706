/**
 * HPACK micro-benchmark: nanoseconds per header block for etcdgate's decoder and encoder
 * on the blocks a gRPC proxy handles on every call, and on hostile 16 KiB blocks (to show
 * the cost stays linear in the block's size).
 *
 *   node --import ./scripts/ts-loader.mjs bench/hpack.ts
 *
 * The decoded blocks are grpc-go's own (bench/hpack-blocks/grpc-go-blocks.json, written by
 * bench/hpack-blocks/main.go with golang.org/x/net/http2/hpack): 256 etcdctl-shaped requests
 * on one connection, so after the first they are mostly dynamic-table hits plus a new
 * grpc-timeout literal; and 256 answers (headers + trailers) of a grpc-go server. Each
 * figure is the median of 7 (hostile blocks: 5) rounds of at least 200 ms of this process's
 * CPU time each, after 300 ms of warm-up.
 */
import { readFileSync } from 'node:fs';
import { huffmanEncode, huffmanLength } from '../src/transport/hpack/huffman.js';
import { HpackDecoder, HpackEncoder, encodeStateless } from '../src/transport/hpack/index.js';

interface Fixture {
  readonly requests: string[];
  readonly responses: string[];
}

const fixture = JSON.parse(readFileSync(new URL('./hpack-blocks/grpc-go-blocks.json', import.meta.url), 'utf8')) as Fixture;
const requestBlocks = fixture.requests.map((h) => Buffer.from(h, 'hex'));
const responseBlocks = fixture.responses.map((h) => Buffer.from(h, 'hex'));
const LIMITS = { maxTableSize: 4096, maxHeaderListSize: 65536 };

/** Keeps results alive so the JIT cannot drop the work. */
let sink = 0;

/** CPU time of this process in ns (user + system): on a shared machine, time spent descheduled does not count. */
function cpuNow(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) * 1000;
}

/** Median CPU ns per op of `run`, which does `ops` ops per call: 300 ms of warm-up, then rounds of >= 200 ms. */
function measure(run: () => void, ops: number, rounds = 7): number {
  const warm = cpuNow();
  while (cpuNow() - warm < 300e6) run();
  const results: number[] = [];
  for (let r = 0; r < rounds; r++) {
    let calls = 0;
    const start = cpuNow();
    let elapsed = 0;
    while (elapsed < 200e6) {
      for (let i = 0; i < 10; i++) run();
      calls += 10;
      elapsed = cpuNow() - start;
    }
    results.push(elapsed / (calls * ops));
  }
  results.sort((a, b) => a - b);
  return results[Math.floor(results.length / 2)] ?? NaN;
}

const rows: Array<[string, number, string]> = [];
function row(what: string, ns: number, note = ''): void {
  rows.push([what, ns, note]);
}

// --- decoding grpc-go's blocks ------------------------------------------------------
{
  const avgLength = requestBlocks.slice(1).reduce((n, b) => n + b.length, 0) / (requestBlocks.length - 1);
  row(
    'decode: gRPC request block (grpc-go, etcdctl headers, dynamic-table hits)',
    measure(() => {
      const d = new HpackDecoder(LIMITS);
      for (const b of requestBlocks) sink += d.decode(b).fields.length;
    }, requestBlocks.length),
    `${requestBlocks.length} blocks on one connection, ${avgLength.toFixed(1)} octets on average after the first; 9 fields`,
  );
  row(
    'decode: gRPC response headers or trailers block (grpc-go server)',
    measure(() => {
      const d = new HpackDecoder(LIMITS);
      for (const b of responseBlocks) sink += d.decode(b).fields.length;
    }, responseBlocks.length),
    `${responseBlocks.length} blocks, 2 fields each`,
  );
}

// --- encoding -----------------------------------------------------------------------
{
  const paths = ['/etcdserverpb.KV/Range', '/etcdserverpb.KV/Put', '/etcdserverpb.KV/Txn'];
  const requests = Array.from({ length: 256 }, (_, i) => [
    ':method', 'POST', ':scheme', 'https', ':path', paths[i % 3] ?? '', ':authority', '127.0.0.1:2379',
    'content-type', 'application/grpc', 'user-agent', 'etcdgate/0.1', 'te', 'trailers',
    'grpc-timeout', `${4999000 + ((i * 7919) % 1000)}u`,
  ]);
  row(
    'encode: gRPC request block (8 fields, varying grpc-timeout)',
    measure(() => {
      const e = new HpackEncoder();
      for (const fields of requests) sink += e.encode(fields).length;
    }, requests.length),
    'one connection, 256 blocks',
  );
  const headers = [':status', '200', 'content-type', 'application/grpc'];
  const trailers = ['grpc-status', '0', 'grpc-message', ''];
  row(
    'encode: gRPC response headers + trailers (two blocks)',
    measure(() => {
      const e = new HpackEncoder();
      for (let i = 0; i < 256; i++) sink += e.encode(headers).length + e.encode(trailers).length;
    }, 256),
    'ns per pair',
  );
  row(
    'encodeStateless: the same request list',
    measure(() => {
      for (const fields of requests) sink += encodeStateless(fields).length;
    }, requests.length),
    'what a precomputed block costs once',
  );
}

// --- hostile 16 KiB blocks ------------------------------------------------------------
{
  const KIB16 = 16 * 1024;
  const literal = (name: string, value: string): Buffer => {
    const v = Buffer.from(value, 'latin1');
    const len = v.length < 127 ? Buffer.from([v.length]) : Buffer.from([127, (v.length - 127) & 0x7f | 0x80, (v.length - 127) >> 7]);
    return Buffer.concat([Buffer.from([0x40, name.length]), Buffer.from(name, 'latin1'), len, v]);
  };
  const bomb = Buffer.concat([literal('b', 'x'.repeat(4000)), Buffer.alloc(KIB16 - 4006, 0xbe)]);
  const small: Buffer[] = [];
  for (let i = 0, n = 0; ; i++) {
    const piece = literal(`k${i % 1000}`, `v${i}`);
    if (n + piece.length > KIB16) break;
    small.push(piece);
    n += piece.length;
  }
  const evicting = Buffer.concat(small);
  // A literal without indexing whose value is ~16 KiB of Huffman code.
  const text = 'etcdgate-'.repeat(2600);
  const coded = Buffer.alloc(huffmanLength(text));
  huffmanEncode(text, coded, 0);
  const rest = coded.length - 127;
  const huffmanValue = Buffer.concat([Buffer.from([0x00, 0x01, 0x61, 0xff, (rest & 0x7f) | 0x80, rest >> 7]), coded]);
  const indexed = Buffer.alloc(KIB16, 0x82);
  // Every hostile block meets the same limits a connection would: 4096-octet table, 64 KiB list.
  const cases: Array<[string, Buffer, { maxTableSize: number; maxHeaderListSize: number }]> = [
    ['decode 16 KiB: HPACK bomb (4 KB entry, then ~12k references to it; list limit 64 KiB)', bomb, LIMITS],
    ['decode 16 KiB: small literals with incremental indexing (constant eviction)', evicting, LIMITS],
    [`decode ${(huffmanValue.length / 1024).toFixed(0)} KiB: one Huffman-coded value`, huffmanValue, LIMITS],
    ['decode 16 KiB: static-table references (list limit 64 KiB)', indexed, LIMITS],
  ];
  for (const [what, block, limits] of cases) {
    // Each run decodes on a fresh decoder so every block sees the same table.
    new HpackDecoder(limits).decode(block); // throws here if the block is malformed
    const ns = measure(() => {
      sink += new HpackDecoder(limits).decode(block).fields.length;
    }, 1, 5);
    row(what, ns, `${(ns / block.length).toFixed(2)} ns per octet`);
  }
}

const width = Math.max(...rows.map(([w]) => w.length));
console.log(`HPACK, node ${process.version}, CPU ns per block (median of rounds)\n`);
for (const [what, ns, note] of rows) {
  console.log(`${what.padEnd(width)}  ${ns.toFixed(0).padStart(8)} ns  ${note}`);
}
if (sink === 0.5) console.log(''); // the sink is read, so the work above is kept
