/**
 * The pure parts of the network defences: CIDR lists (config allowedSources, PROXY
 * trustedFrom and policy match.source), the PROXY protocol v1/v2 header parser with its
 * bounds, and the per-source limiter of refusal records driven by an injected clock.
 */
import { describe, expect, it } from 'vitest';
import { compileCidrList, parseCidr } from '../src/network/cidr.js';
import { MAX_V2_HEADER_BYTES, parseProxyHeader } from '../src/network/proxy-protocol.js';
import { RefusalLimiter, sourceKey } from '../src/network/refusal-limiter.js';

const list = (...texts: string[]): ReturnType<typeof compileCidrList> =>
  compileCidrList(texts, (i, message) => {
    throw new Error(`${texts[i] ?? ''}: ${message}`);
  });

describe('CIDR lists', () => {
  it('match IPv4 and IPv6 networks, and single addresses, inside and outside', () => {
    const rules = list('10.0.0.0/8', '192.168.1.0/24', '127.0.0.2', '2001:db8::/32', '::1');
    for (const inside of ['10.1.2.3', '10.255.255.255', '192.168.1.77', '127.0.0.2', '2001:db8:1::5', '::1', '::ffff:10.9.9.9']) expect(rules.matches(inside), inside).toBe(true);
    for (const outside of ['11.0.0.1', '192.168.2.1', '127.0.0.3', '2001:db9::1', '::2', 'not-an-ip', '']) expect(rules.matches(outside), outside).toBe(false);
  });

  it('0.0.0.0/0 and ::/0 cover their family only', () => {
    expect(list('0.0.0.0/0').matches('203.0.113.9')).toBe(true);
    expect(list('0.0.0.0/0').matches('2001:db8::1')).toBe(false);
    expect(list('::/0').matches('2001:db8::1')).toBe(true);
  });

  it('refuse host bits, bad prefix lengths, IPv4-mapped networks and non-addresses, saying why', () => {
    expect(parseCidr('10.0.0.1/8')).toMatchObject({ ok: false, error: expect.stringContaining('10.0.0.0/8') });
    expect(parseCidr('10.0.0.0/33')).toMatchObject({ ok: false, error: 'prefix length must be 0 to 32' });
    expect(parseCidr('::ffff:10.0.0.0/104')).toMatchObject({ ok: false });
    expect(parseCidr('example.org/24')).toMatchObject({ ok: false });
    expect(parseCidr('2001:db8::/129')).toMatchObject({ ok: false });
    expect(parseCidr('2001:db8::/32')).toMatchObject({ ok: true, network: { family: 6, prefixLength: 32 } });
  });
});

const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v2(command: number, family: number, body: Buffer): Buffer {
  const head = Buffer.alloc(4);
  head[0] = 0x20 | command;
  head[1] = family;
  head.writeUInt16BE(body.length, 2);
  return Buffer.concat([V2_SIGNATURE, head, body]);
}

function v4Block(source: number[], sourcePort: number): Buffer {
  const block = Buffer.alloc(12);
  Buffer.from(source).copy(block, 0);
  Buffer.from([127, 0, 0, 1]).copy(block, 4);
  block.writeUInt16BE(sourcePort, 8);
  block.writeUInt16BE(2379, 10);
  return block;
}

describe('PROXY protocol header', () => {
  it('v1: TCP4 and TCP6 give the client; UNKNOWN keeps the socket peer; the bytes after it are left', () => {
    const line = Buffer.from('PROXY TCP4 198.51.100.7 127.0.0.1 40001 2379\r\n\x16\x03\x01');
    expect(parseProxyHeader(line)).toEqual({ state: 'done', consumed: line.length - 3, version: 1, source: { address: '198.51.100.7', port: 40001 } });
    expect(parseProxyHeader(Buffer.from('PROXY TCP6 2001:db8::7 ::1 5 2379\r\n'))).toMatchObject({ state: 'done', source: { address: '2001:db8::7', port: 5 } });
    expect(parseProxyHeader(Buffer.from('PROXY UNKNOWN\r\n'))).toEqual({ state: 'done', consumed: 15, version: 1 });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4'))).toEqual({ state: 'incomplete' });
  });

  it('v1: malformed lines and lines beyond 107 bytes are refused', () => {
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.999 127.0.0.1 1 2\r\n'))).toMatchObject({ state: 'invalid' });
    expect(parseProxyHeader(Buffer.from('PROXY TCP4 1.2.3.4 127.0.0.1 70000 2\r\n'))).toMatchObject({ state: 'invalid' });
    expect(parseProxyHeader(Buffer.from(`PROXY TCP4 ${'1'.repeat(120)}`))).toMatchObject({ state: 'invalid', error: expect.stringContaining('107') });
  });

  it('v2: PROXY over IPv4 and IPv6 gives the client, LOCAL keeps the peer, TLVs are skipped', () => {
    const header = v2(1, 0x11, Buffer.concat([v4Block([203, 0, 113, 5], 51234), Buffer.from([0x04, 0x00, 0x01, 0x00])]));
    expect(parseProxyHeader(Buffer.concat([header, Buffer.from([0x16])]))).toEqual({ state: 'done', consumed: header.length, version: 2, source: { address: '203.0.113.5', port: 51234 } });
    const six = Buffer.alloc(36);
    Buffer.from('20010db8000000000000000000000009', 'hex').copy(six, 0);
    six.writeUInt16BE(4242, 32);
    expect(parseProxyHeader(v2(1, 0x21, six))).toMatchObject({ state: 'done', source: { address: '2001:db8::9', port: 4242 } });
    expect(parseProxyHeader(v2(0, 0x00, Buffer.alloc(0)))).toEqual({ state: 'done', consumed: 16, version: 2 });
    expect(parseProxyHeader(header.subarray(0, 20))).toEqual({ state: 'incomplete' });
  });

  it('v2: unknown versions and commands, datagrams, short blocks and oversized headers are refused', () => {
    const bad = v2(1, 0x11, v4Block([1, 2, 3, 4], 1));
    bad[12] = 0x31;
    expect(parseProxyHeader(bad)).toMatchObject({ state: 'invalid' });
    expect(parseProxyHeader(v2(2, 0x11, v4Block([1, 2, 3, 4], 1)))).toMatchObject({ state: 'invalid' });
    expect(parseProxyHeader(v2(1, 0x12, v4Block([1, 2, 3, 4], 1)))).toMatchObject({ state: 'invalid', error: expect.stringContaining('datagram') });
    expect(parseProxyHeader(v2(1, 0x11, Buffer.alloc(8)))).toMatchObject({ state: 'invalid' });
    // Refused on the announced length, before the bytes arrive: the read stays bounded.
    expect(parseProxyHeader(v2(1, 0x11, Buffer.alloc(MAX_V2_HEADER_BYTES)).subarray(0, 16))).toMatchObject({ state: 'invalid' });
  });

  it('anything else is not a PROXY header (a TLS ClientHello, plain HTTP)', () => {
    expect(parseProxyHeader(Buffer.from([0x16, 0x03, 0x01]))).toMatchObject({ state: 'invalid' });
    expect(parseProxyHeader(Buffer.from('GET / HTTP/1.1\r\n'))).toMatchObject({ state: 'invalid' });
  });
});

describe('refusal record limiter', () => {
  function harness(limits = { perMinute: 60, burst: 5, totalPerMinute: 600 }): {
    limiter: RefusalLimiter<{ address: string }>;
    recorded: string[];
    summaries: [string, number][];
    suppressed: () => number;
    advance: (ms: number) => void;
  } {
    let now = 0;
    let suppressed = 0;
    const recorded: string[] = [];
    const summaries: [string, number][] = [];
    const limiter = new RefusalLimiter<{ address: string }>(limits, {
      now: () => now,
      record: (e) => recorded.push(e.address),
      summary: (address, count) => summaries.push([address, count]),
      suppressed: () => (suppressed += 1),
      maxSources: 3,
    });
    return { limiter, recorded, summaries, suppressed: () => suppressed, advance: (ms) => (now += ms) };
  }

  it('10,000 refusals from one source write the burst and one summary with the rest', () => {
    const h = harness();
    for (let i = 0; i < 10_000; i++) h.limiter.offer({ address: '127.0.0.3' });
    h.limiter.offer({ address: '127.0.0.2' });
    expect(h.recorded.filter((a) => a === '127.0.0.3')).toHaveLength(5);
    expect(h.recorded).toContain('127.0.0.2');
    expect(h.suppressed()).toBe(9_995);
    h.limiter.sweep();
    expect(h.summaries).toEqual([['127.0.0.3', 9_995]]);
    h.limiter.sweep();
    expect(h.summaries).toHaveLength(1);
  });

  it('refills at the per-minute rate', () => {
    const h = harness();
    for (let i = 0; i < 6; i++) h.limiter.offer({ address: '10.0.0.1' });
    expect(h.recorded).toHaveLength(5);
    h.advance(1_000);
    h.limiter.offer({ address: '10.0.0.1' });
    expect(h.recorded).toHaveLength(6);
  });

  it('many sources are bounded by the total and by the remembered sources; nothing is lost from the counts', () => {
    const h = harness({ perMinute: 60, burst: 5, totalPerMinute: 12 });
    for (let s = 0; s < 10; s++) for (let i = 0; i < 5; i++) h.limiter.offer({ address: `10.0.0.${s}` });
    expect(h.recorded).toHaveLength(12);
    h.limiter.sweep();
    const summarized = h.summaries.reduce((sum, [, count]) => sum + count, 0);
    expect(summarized).toBe(50 - 12);
    expect(h.summaries.some(([address]) => address === '')).toBe(true);
    expect(h.limiter.sources).toBeLessThanOrEqual(3);
  });

  it('groups IPv6 sources by /64', () => {
    expect(sourceKey('2001:db8:1:2::5')).toBe(sourceKey('2001:db8:1:2:ffff::1'));
    expect(sourceKey('2001:db8:1:3::5')).not.toBe(sourceKey('2001:db8:1:2::5'));
    expect(sourceKey('::ffff:127.0.0.3')).toBe('127.0.0.3');
  });

  it('a perMinute of 0 records everything', () => {
    const h = harness({ perMinute: 0, burst: 1, totalPerMinute: 1 });
    for (let i = 0; i < 100; i++) h.limiter.offer({ address: '127.0.0.3' });
    expect(h.recorded).toHaveLength(100);
  });
});
