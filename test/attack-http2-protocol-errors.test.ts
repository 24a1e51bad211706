/**
 * Malformed HTTP/2 from a client with a valid certificate, one case per connection, sent
 * by an independent HTTP/2 client (test/support/h2-attack.py: python3-hpack and
 * python3-hyperframe): every case ends in the code RFC 9113 gives it, a connection error
 * (GOAWAY) or a stream error (RST_STREAM, after which the same connection still serves an
 * ordinary Range), while a legitimate client on its own connection is served throughout.
 *
 * Stream states (5.1, 5.1.1): a stream identifier used again or going backwards, even
 * identifiers, DATA on half-closed and closed streams, frames on idle streams. Frames
 * (6.x): SETTINGS, PING, WINDOW_UPDATE, RST_STREAM, PRIORITY, GOAWAY, PUSH_PROMISE,
 * CONTINUATION, padding, frame size, flow control. Header blocks (4.3, 8.2, 8.3):
 * HPACK errors (COMPRESSION_ERROR) and malformed requests (PROTOCOL_ERROR); 8.1:
 * trailers that do not end the stream.
 */
import { describe, expect, it } from 'vitest';
import { RSS_BOUND_MIB, runAttack, underAttack, useAttackTarget } from './support/attack.js';

const target = useAttackTarget();

interface Case {
  readonly name: string;
  /** Acceptable outcomes, "goaway:CODE" or "rst:CODE". */
  readonly expect: readonly string[];
  readonly goaway: string | null;
  readonly rst: Record<string, string>;
  /** gRPC status of an ordinary Range sent afterwards on the same connection, when it was still open. */
  readonly after?: string | null;
}

describe('protocol errors get the RFC 9113 code, and nothing else is disturbed', () => {
  it('every case ends in its GOAWAY or RST_STREAM code; after a stream error the connection still serves', async () => {
    const { result, legit, peakRssMiB } = await underAttack(target, () => runAttack(target.gate.endpoint, target.pki, 'root', 'protocol-errors'));
    const cases = result['cases'] as Case[];
    expect(cases.length).toBeGreaterThanOrEqual(45);
    const outcomes = cases.map((c) => {
      const got = [...(c.goaway === null ? [] : [`goaway:${c.goaway}`]), ...Object.values(c.rst).map((code) => `rst:${code}`)];
      return { name: c.name, got, matches: got.some((g) => c.expect.includes(g)), after: c.after };
    });
    expect(outcomes.filter((o) => !o.matches)).toEqual([]);
    // A stream error leaves the connection usable: an ordinary Range on it succeeds.
    for (const c of cases.filter((one) => one.goaway === null)) expect([c.name, c.after]).toEqual([c.name, '0']);
    expect(legit.failures).toEqual([]);
    expect(legit.calls.length).toBeGreaterThan(10);
    expect(peakRssMiB).toBeLessThan(RSS_BOUND_MIB);
  });

  it('a stream identifier used again after END_STREAM both ways is connection error STREAM_CLOSED; a new one below the last, PROTOCOL_ERROR', async () => {
    const result = await runAttack(target.gate.endpoint, target.pki, 'root', 'protocol-errors', {
      only: ['HEADERS on a stream id already used (closed after END_STREAM both ways)', 'HEADERS with a stream id below one already used'],
    });
    const cases = result['cases'] as Case[];
    expect(cases.map((c) => [c.name, c.goaway])).toEqual([
      ['HEADERS on a stream id already used (closed after END_STREAM both ways)', 'STREAM_CLOSED'],
      ['HEADERS with a stream id below one already used', 'PROTOCOL_ERROR'],
    ]);
  });
});
