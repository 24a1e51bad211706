/**
 * Key-range semantics (docs/authorization.md, "Key ranges"): prefix ends with 0xff bytes,
 * the empty key, "\0" ends, binary and invalid-UTF-8 keys, and range coverage across
 * adjacent, overlapping and gapped grants. Each scenario has an allowed and a denied request.
 */
import { describe, expect, it } from 'vitest';
import { compilePolicy } from '../src/policy/compile.js';
import { prefixEnd, requestInterval } from '../src/policy/key-range.js';
import type { Access } from '../src/policy/types.js';
import { b64, bytes, key, prefix, range, who } from './support/policy.js';

describe('prefixEnd', () => {
  it.each([
    ['abc', [0x61, 0x62, 0x64]],
    [[0x61, 0xff], [0x62]],
    [[0x01, 0xff, 0xff], [0x02]],
    [[0x00], [0x01]],
  ] as const)('%j -> %j', (input, end) => {
    expect(prefixEnd(bytes(input))).toEqual(Buffer.from(end));
  });

  it('is unbounded for all-0xff and empty prefixes', () => {
    expect(prefixEnd(bytes([0xff, 0xff]))).toBeNull();
    expect(prefixEnd(Buffer.alloc(0))).toBeNull();
  });
});

describe('requestInterval', () => {
  it('reads an empty rangeEnd as the single key', () => {
    expect(requestInterval(bytes('k'), Buffer.alloc(0))).toEqual({ from: bytes('k'), to: bytes([0x6b, 0]) });
  });
  it('reads rangeEnd "\\0" as unbounded, and key "\\0" with it as every key from the empty key', () => {
    expect(requestInterval(bytes('k'), bytes([0]))).toEqual({ from: bytes('k'), to: null });
    expect(requestInterval(bytes([0]), bytes([0]))).toEqual({ from: Buffer.alloc(0), to: null });
  });
  it('reads rangeEnd <= key as the single key (conservative: the key itself must be allowed)', () => {
    expect(requestInterval(bytes('k'), bytes('a'))).toEqual({ from: bytes('k'), to: bytes([0x6b, 0]) });
    expect(requestInterval(bytes('k'), bytes('k'))).toEqual({ from: bytes('k'), to: bytes([0x6b, 0]) });
  });
});

interface Scenario {
  readonly name: string;
  readonly keys: readonly Record<string, unknown>[];
  readonly allowed: readonly Access[];
  readonly denied: readonly { readonly access: Access; readonly reason: string }[];
}

const scenarios: Scenario[] = [
  {
    name: 'prefix ending in 0xff drops the 0xff and increments the byte before it',
    keys: [{ prefix: { base64: b64([0x61, 0xff]) }, access: 'read' }],
    allowed: [key('read', [0x61, 0xff]), key('read', [0x61, 0xff, 0xff, 0x01]), prefix('read', [0x61, 0xff]), range('read', [0x61, 0xff], [0x62])],
    denied: [
      { access: key('read', [0x62]), reason: 'not granted' },
      { access: key('read', [0x61, 0xfe, 0xff]), reason: 'not granted' },
      { access: range('read', [0x61, 0xff], [0x62, 0x00]), reason: 'range not fully covered' },
    ],
  },
  {
    name: 'an all-0xff prefix reaches to the end of the key space',
    keys: [{ prefix: { base64: b64([0xff, 0xff]) }, access: 'read' }],
    allowed: [range('read', [0xff, 0xff], [0x00]), prefix('read', [0xff, 0xff, 0xff]), key('read', [0xff, 0xff, 0xff, 0xff])],
    denied: [
      { access: range('read', [0xff], [0x00]), reason: 'range not fully covered' },
      { access: key('read', [0xff, 0xfe]), reason: 'not granted' },
    ],
  },
  {
    name: 'the empty key is a key like any other and `all` covers it',
    keys: [{ all: true, access: 'read' }],
    allowed: [key('read', ''), range('read', [0], [0]), range('read', '', [0])],
    denied: [{ access: key('write', ''), reason: 'not granted' }],
  },
  {
    name: 'a range from "\\x01" does not cover "every key" (which starts at the empty key)',
    keys: [{ range: { from: '\u0001', to: '\0' }, access: 'read' }],
    allowed: [range('read', [0x01], [0]), key('read', [0x01]), key('read', [0xff, 0xff])],
    denied: [
      { access: range('read', [0], [0]), reason: 'range not fully covered' },
      { access: key('read', ''), reason: 'not granted' },
      { access: key('read', [0x00, 0xff]), reason: 'not granted' },
    ],
  },
  {
    name: 'a from-key grant ("\\0" end) covers every key after it',
    keys: [{ range: { from: '/m', to: '\0' }, access: 'readwrite' }],
    allowed: [range('write', '/z', [0]), range('read', '/m', [0]), key('read', [0x2f, 0x7a, 0xff])],
    denied: [
      { access: range('read', '/a', [0]), reason: 'range not fully covered' },
      { access: key('write', '/l'), reason: 'not granted' },
    ],
  },
  {
    name: 'invalid UTF-8 keys compare as bytes and are never conflated with U+FFFD',
    keys: [{ prefix: { base64: b64([0xc3, 0x28]) }, access: 'readwrite' }],
    allowed: [key('write', [0xc3, 0x28, 0x80]), prefix('read', [0xc3, 0x28])],
    denied: [
      { access: key('write', [0xef, 0xbf, 0xbd, 0x28]), reason: 'not granted' },
      { access: key('write', [0xc3]), reason: 'not granted' },
    ],
  },
  {
    name: 'NUL bytes inside keys are ordinary bytes',
    keys: [{ key: 'a\u0000b', access: 'read' }],
    allowed: [key('read', [0x61, 0x00, 0x62])],
    denied: [
      { access: key('read', 'a'), reason: 'not granted' },
      { access: key('read', [0x61, 0x00]), reason: 'not granted' },
      { access: key('read', [0x61, 0x00, 0x62, 0x00]), reason: 'not granted' },
    ],
  },
  {
    name: 'an exact key grants that key only',
    keys: [{ key: 'foo', access: 'write' }],
    allowed: [key('write', 'foo'), range('write', 'foo', [0x66, 0x6f, 0x6f, 0x00])],
    denied: [
      { access: key('write', 'fo'), reason: 'not granted' },
      { access: key('write', 'foo/'), reason: 'not granted' },
      { access: prefix('write', 'foo'), reason: 'range not fully covered' },
    ],
  },
  {
    name: 'adjacent grants together cover a range that spans both',
    keys: [
      { range: { from: 'a', to: 'm' }, access: 'read' },
      { range: { from: 'm', to: 'z' }, access: 'read' },
    ],
    allowed: [range('read', 'c', 'x'), range('read', 'a', 'z'), key('read', 'm')],
    denied: [
      { access: range('read', 'c', 'z\u0000'), reason: 'range not fully covered' },
      { access: range('read', 'z', [0]), reason: 'not granted' },
    ],
  },
  {
    name: 'a gap between grants denies a range across it, whole',
    keys: [
      { range: { from: 'a', to: 'm' }, access: 'read' },
      { range: { from: 'n', to: 'z' }, access: 'read' },
    ],
    allowed: [range('read', 'c', 'l'), range('read', 'n', 'y')],
    denied: [
      { access: range('read', 'c', 'x'), reason: 'range not fully covered' },
      { access: key('read', 'm'), reason: 'not granted' },
      { access: range('read', 'm', 'n'), reason: 'not granted' },
    ],
  },
  {
    name: 'overlapping grants merge',
    keys: [
      { prefix: '/a/', access: 'read' },
      { range: { from: '/a/m', to: '/b/x' }, access: 'read' },
      { prefix: '/a/b/', access: 'read' },
    ],
    allowed: [range('read', '/a/', '/b/x'), range('read', '/a/b', '/b/c'), prefix('read', '/a/')],
    denied: [
      { access: range('read', '/a/b', '/b/y'), reason: 'range not fully covered' },
      { access: range('read', '/', '/a/b'), reason: 'range not fully covered' },
    ],
  },
  {
    name: 'a range whose end is not after its key needs the key itself',
    keys: [{ key: 'k', access: 'read' }],
    allowed: [range('read', 'k', 'a'), range('read', 'k', 'k')],
    denied: [{ access: range('read', 'j', 'a'), reason: 'not granted' }],
  },
  {
    name: 'read and write are separate',
    keys: [{ prefix: '/r/', access: 'read' }, { prefix: '/w/', access: 'write' }],
    allowed: [key('read', '/r/1'), key('write', '/w/1')],
    denied: [
      { access: key('write', '/r/1'), reason: 'not granted' },
      { access: key('read', '/w/1'), reason: 'not granted' },
    ],
  },
];

describe.each(scenarios)('$name', ({ keys, allowed, denied }) => {
  const policy = compilePolicy({ roles: { r: { keys } }, bindings: [{ match: { cn: 'caller' }, roles: ['r'] }] });
  const caller = policy.permissionsFor(who({ cn: 'caller' }));
  const stranger = policy.permissionsFor(who({ cn: 'stranger' }));

  it.each(allowed.map((a, i) => [i, a] as const))('allows request %i', (_i, access) => {
    expect(caller.check([access])).toMatchObject({ allowed: true, reason: 'granted', role: 'r' });
    expect(stranger.check([access])).toMatchObject({ allowed: false, reason: 'no binding' });
  });

  it.each(denied.map((d, i) => [i, d] as const))('denies request %i', (_i, { access, reason }) => {
    expect(caller.check([access])).toMatchObject({ allowed: false, reason, refused: access });
  });
});

describe('grant attribution', () => {
  const policy = compilePolicy({
    roles: {
      wide: { keys: [{ prefix: '/a/', access: 'read' }] },
      narrow: { keys: [{ prefix: '/a/b/', access: 'read' }] },
    },
    bindings: [{ match: { cn: 'c' }, roles: ['wide', 'narrow'] }],
  });
  const permissions = policy.permissionsFor(who({ cn: 'c' }));

  it('names the most specific grant that contains the key', () => {
    expect(permissions.check([key('read', '/a/b/x')])).toEqual({ allowed: true, role: 'narrow', rule: 'prefix /a/b/ read', reason: 'granted' });
    expect(permissions.check([key('read', '/a/c')])).toEqual({ allowed: true, role: 'wide', rule: 'prefix /a/ read', reason: 'granted' });
  });

  it('returns the first denial of a list, and an empty list is allowed', () => {
    // The first access refused is named: the write, not the later read of /z.
    expect(permissions.check([key('read', '/a/c'), key('write', '/a/c'), key('read', '/z')])).toMatchObject({ allowed: false, reason: 'not granted', refused: key('write', '/a/c') });
    expect(permissions.check([])).toMatchObject({ allowed: true });
  });
});
