/**
 * Attacks through header blocks, from a client with a valid certificate, sent by an
 * independent HTTP/2 client (test/support/h2-attack.py with python3-hpack), each while a
 * legitimate client on its own connection makes a Range every 50 ms:
 * - CONTINUATION flood (the 2024 class): a header block that never ends, in 16 KiB
 *   frames or in 1-byte ones: GOAWAY ENHANCE_YOUR_CALM once it passes 64 KiB or 32
 *   CONTINUATION frames, before any of it is decoded;
 * - HPACK bomb: a 4,000-byte entry put in the dynamic table, then blocks of 16,000
 *   one-byte references to it (64 MB each once decoded): each refused with HTTP 431 at
 *   the 64 KiB header list limit (RFC 9113 10.5.1), the connection kept and its HPACK
 *   context still in step (an ordinary Range on it succeeds);
 * - an oversized header list in a small block (3,000 fields): 431, connection kept;
 * - a 100 KB header block (HEADERS + CONTINUATION): GOAWAY ENHANCE_YOUR_CALM.
 * Every legitimate call succeeds and etcdgate's RSS stays under 512 MiB.
 */
import { describe, expect, it } from 'vitest';
import { RSS_BOUND_MIB, goawayOf, runAttack, summaryOf, underAttack, useAttackTarget } from './support/attack.js';

const target = useAttackTarget();

describe('CONTINUATION flood', () => {
  it.each([
    ['16 KiB frames', 16_384, 'header block too large', 8],
    ['1-byte frames', 1, 'too many CONTINUATION frames', 33],
    ['empty frames', 0, 'too many CONTINUATION frames', 33],
  ])('a header block that never ends, in %s: GOAWAY ENHANCE_YOUR_CALM', async (_label, size, debug, atLeast) => {
    const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'tenant-a', 'continuation', { size, frames: 100_000 }), { afterMs: 300 });
    const goaway = goawayOf(result);
    expect(goaway?.code).toBe('ENHANCE_YOUR_CALM');
    expect(goaway?.debug).toBe(debug);
    // The stream was never opened: the block was refused before it was decoded.
    expect(goaway?.lastStreamId).toBe(0);
    expect(result['sent']).toBeGreaterThanOrEqual(atLeast);
    expect(result['closed']).toBe(true);
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});

describe('HPACK bomb', () => {
  it('1,000 blocks of 16,000 references to a 4,000-byte entry: each refused with 431, the connection kept in step', async () => {
    const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'root', 'hpack-bomb', { streams: 1000, entry: 4000, refs: 16_000 }));
    expect((result['first'] as { grpcStatus: string }).grpcStatus).toBe('0');
    expect(summaryOf(result, 'bombs')).toMatchObject({ streams: 1000, finished: 1000, httpStatus: { '431': 1000 } });
    expect(goawayOf(result)).toBeNull();
    // Still decodable after 16,000,000 references: the dynamic table stayed in step.
    expect((result['after'] as { grpcStatus: string }).grpcStatus).toBe('0');
    expect(legit.failures).toEqual([]);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });
});

describe('oversized header lists', () => {
  it('3,000 small fields (a 32 KB block over the 64 KiB list limit once decoded): 431 for each, the connection kept', async () => {
    const { result, legit } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'root', 'big-headers', { kind: 'list', fields: 3000, streams: 50 }));
    expect(result['encodedBytes']).toBeLessThan(64 * 1024);
    expect(summaryOf(result, 'requests')).toMatchObject({ streams: 50, httpStatus: { '431': 50 } });
    expect((result['after'] as { grpcStatus: string }).grpcStatus).toBe('0');
    expect(legit.failures).toEqual([]);
  });

  it('a 100 KB header block over HEADERS and CONTINUATION frames: GOAWAY ENHANCE_YOUR_CALM', async () => {
    const { result, legit } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'root', 'big-headers', { kind: 'block', bytes: 100_000 }));
    expect(goawayOf(result)).toMatchObject({ code: 'ENHANCE_YOUR_CALM', debug: 'header block too large' });
    expect(result['closed']).toBe(true);
    expect(legit.failures).toEqual([]);
  });
});
