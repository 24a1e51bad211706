/**
 * The byte writer the audit records are written with: JSON.stringify's output for the
 * same values (escaping included), commas placed by nesting, records far larger than its
 * buffer, a clean start after each reset, and a refusal to nest without bound.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { escapeRawUnsafe, JsonWriter } from '../src/audit/json-writer.js';

describe('JsonWriter', () => {
  it('writes any string as JSON.stringify does, with raw-unsafe characters escaped', () => {
    const writer = new JsonWriter();
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (value) => {
        writer.reset();
        writer.open('[').item().string(value).close(']');
        expect(writer.text()).toBe(escapeRawUnsafe(JSON.stringify([value])));
      }),
      { numRuns: 2000 },
    );
  });

  it('places commas by nesting level', () => {
    const writer = new JsonWriter();
    writer.open('{').key('a').open('[').item().number(1).item().open('{').close('}').item().boolean(false).close(']');
    writer.key('b').open('{').key('c').raw('null').close('}').members('"d":1,"e":2').key('f').json('"é"').close('}');
    const text = writer.text();
    expect(text).toBe('{"a":[1,{},false],"b":{"c":null},"d":1,"e":2,"f":"é"}');
    expect(JSON.parse(text)).toStrictEqual({ a: [1, {}, false], b: { c: null }, d: 1, e: 2, f: 'é' });
  });

  it('grows for a record larger than its buffer and starts clean after reset', () => {
    const writer = new JsonWriter();
    const long = 'k'.repeat(200_000);
    writer.open('{').key('long').string(long).key('bytes').asciiBytesString(Buffer.from('a"b\\c')).close('}');
    expect(JSON.parse(writer.text())).toStrictEqual({ long, bytes: 'a"b\\c' });
    writer.reset();
    writer.open('{').key('n').number(Number.NaN).close('}');
    expect(writer.text()).toBe('{"n":null}');
  });

  it('refuses to nest deeper than its bound', () => {
    const writer = new JsonWriter();
    expect(() => {
      for (let i = 0; i < 100; i += 1) writer.open('[');
    }).toThrow(/nested deeper/u);
    writer.reset();
    expect(writer.open('[').close(']').text()).toBe('[]');
  });
});
