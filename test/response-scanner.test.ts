/**
 * The response scanner reads a relayed response's audit summary (header revision, key
 * count) from its framed bytes as they stream past, in pieces of any size. Held here to
 * summarizeResponse on the whole message: the same summary for generated Range, Put and
 * DeleteRange responses however they are cut, the header included when it is split.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ResponseScanner } from '../src/etcd/response-scanner.js';
import { summarizeResponse } from '../src/etcd/responses.js';
import { WireWriter } from '../src/etcd/wire-writer.js';
import { frameMessage } from '../src/transport/grpc/message-reader.js';

const PATHS = ['/etcdserverpb.KV/Range', '/etcdserverpb.KV/Put', '/etcdserverpb.KV/DeleteRange'] as const;

const responses = fc.record({
  path: fc.constantFrom(...PATHS),
  clusterId: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }),
  revision: fc.bigInt({ min: 0n, max: (1n << 63n) - 1n }),
  raftTerm: fc.bigInt({ min: 0n, max: 1n << 40n }),
  kvs: fc.array(fc.record({ key: fc.uint8Array({ maxLength: 40 }), value: fc.uint8Array({ maxLength: 300 }) }), { maxLength: 5 }),
  count: fc.nat(),
  cuts: fc.array(fc.nat(), { maxLength: 12 }),
});

type Response = typeof responses extends fc.Arbitrary<infer T> ? T : never;

function encode(r: Response): Buffer {
  const header = new WireWriter().int(1, r.clusterId).int(2, 7n).int(3, r.revision).int(4, r.raftTerm).finish();
  const message = new WireWriter().bytes(1, header);
  if (r.path === '/etcdserverpb.KV/Range') {
    for (const kv of r.kvs) message.bytes(2, new WireWriter().bytes(1, Buffer.from(kv.key)).bytes(5, Buffer.from(kv.value)).finish());
    message.int(4, r.count);
  } else if (r.path === '/etcdserverpb.KV/DeleteRange') {
    message.int(2, r.count);
  }
  return message.finish();
}

/** The framed bytes cut at the given offsets. */
function pieces(framed: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (framed.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let from = 0;
  for (const to of [...at, framed.length]) {
    out.push(framed.subarray(from, to));
    from = to;
  }
  return out;
}

describe('response scanner', () => {
  it('reads the same summary as summarizeResponse, however the bytes are cut', () => {
    fc.assert(
      fc.property(responses, (r) => {
        const message = encode(r);
        const scanner = new ResponseScanner(r.path);
        for (const piece of pieces(frameMessage(message), r.cuts)) scanner.push(piece);
        const summary = scanner.summary();
        expect(summary).toStrictEqual(summarizeResponse(r.path, message));
        // Proto3 leaves a zero revision out of the header.
        expect(summary.revision).toBe(r.revision === 0n ? undefined : r.revision.toString());
      }),
      { numRuns: 500 },
    );
  });

  it('reads the revision of a header delivered one byte at a time', () => {
    const message = new WireWriter().bytes(1, new WireWriter().int(1, 1n).int(3, 123456789012n).finish()).finish();
    const scanner = new ResponseScanner('/etcdserverpb.KV/Put');
    for (const byte of frameMessage(message)) scanner.push(Buffer.from([byte]));
    expect(scanner.summary()).toStrictEqual({ revision: '123456789012' });
  });

  it('gives no revision, and does not throw, for a header that is not a message', () => {
    // Field 1 of length 2 holding a tag whose varint never ends.
    const message = Buffer.from([0x0a, 0x02, 0x18, 0xff]);
    const scanner = new ResponseScanner('/etcdserverpb.KV/Put');
    scanner.push(frameMessage(message));
    expect(scanner.summary()).toStrictEqual(summarizeResponse('/etcdserverpb.KV/Put', message));
    expect(scanner.summary().revision).toBeUndefined();
  });
});
