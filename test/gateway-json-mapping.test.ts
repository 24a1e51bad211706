/**
 * The gateway's JSON layer on its own (no etcd): request JSON to protobuf bytes agrees
 * with protobufjs encoding the same message, 64-bit integers survive as JSON numbers,
 * the body splitter finds every value of a request stream however it is cut into
 * chunks, and arbitrary text never throws anything but JsonMappingError.
 */
import * as fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decode, encode } from './support/etcd-messages.js';
import { EtcdJson, JsonMappingError, parseJsonValue, splitJsonValues } from '../src/gateway/json.js';
import { GATEWAY_ROUTES, resolveRoute } from '../src/gateway/routes.js';

const json = new EtcdJson();
const range = json.method('/etcdserverpb.KV/Range');
const put = json.method('/etcdserverpb.KV/Put');

const bytesArb = fc.uint8Array({ maxLength: 24 }).map((array) => Buffer.from(array));
const int64Arb = fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });

describe('request JSON -> protobuf', () => {
  it('a RangeRequest from JSON is the RangeRequest protobufjs encodes (proto or JSON field names)', () => {
    fc.assert(
      fc.property(bytesArb, bytesArb, int64Arb, fc.boolean(), fc.constantFrom('NONE', 'ASCEND', 'DESCEND'), fc.boolean(), (key, rangeEnd, limit, keysOnly, order, camel) => {
        const body = camel
          ? `{"key":"${key.toString('base64')}","rangeEnd":"${rangeEnd.toString('base64')}","limit":${limit},"keysOnly":${keysOnly},"sortOrder":"${order}"}`
          : `{"key":"${key.toString('base64')}","range_end":"${rangeEnd.toString('base64')}","limit":"${limit}","keys_only":${keysOnly},"sort_order":"${order}"}`;
        const bytes = range.requestFromJson(parseJsonValue(body));
        const expected = encode('etcdserverpb.RangeRequest', { key, range_end: rangeEnd, limit: limit.toString(), keys_only: keysOnly, sort_order: order });
        expect(decode('etcdserverpb.RangeRequest', bytes)).toEqual(decode('etcdserverpb.RangeRequest', expected));
      }),
      { numRuns: 200 },
    );
  });

  it('a lease ID beyond 2^53 sent as a bare JSON number reaches the protobuf exactly', () => {
    const id = 7587862024383441930n;
    const bytes = put.requestFromJson(parseJsonValue(`{"key":"aw==","lease":${id}}`));
    expect(decode('etcdserverpb.PutRequest', bytes)['lease']).toBe(id.toString());
  });

  it('two members of one oneof are refused (etcd would keep a random one)', () => {
    const txn = json.method('/etcdserverpb.KV/Txn');
    expect(() => txn.requestFromJson(parseJsonValue('{"success":[{"request_range":{"key":"aw=="},"request_put":{"key":"aw=="}}]}'))).toThrow(JsonMappingError);
    expect(() => txn.requestFromJson(parseJsonValue('{"success":[{"request_put":{"key":"aw=="}}]}'))).not.toThrow();
  });

  it('arbitrary text gives bytes or JsonMappingError, never another error', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json(), fc.jsonValue().map((v) => JSON.stringify(v))), (text) => {
        try {
          range.requestFromJson(parseJsonValue(text));
        } catch (error: unknown) {
          expect(error).toBeInstanceOf(JsonMappingError);
        }
      }),
      { numRuns: 500 },
    );
  });
});

describe('response protobuf -> JSON', () => {
  it('int64 as strings, bytes as base64, defaults left out, enums by name', () => {
    const response = encode('etcdserverpb.RangeResponse', {
      header: { cluster_id: '18446744073709551615', revision: '0' },
      kvs: [{ key: Buffer.from('k'), value: Buffer.alloc(0), version: '1' }],
      count: '1',
    });
    expect(range.responseToJson(response)).toBe('{"header":{"cluster_id":"18446744073709551615"},"kvs":[{"key":"aw==","version":"1"}],"count":"1"}');
    const watch = json.method('/etcdserverpb.Watch/Watch');
    const event = encode('etcdserverpb.WatchResponse', { watch_id: '3', events: [{ type: 'DELETE', kv: { key: Buffer.from('k') } }] });
    expect(watch.responseToJson(event)).toBe('{"watch_id":"3","events":[{"type":"DELETE","kv":{"key":"aw=="}}]}');
  });
});

describe('request streams', () => {
  it('every value of a stream is found however the body is cut', () => {
    fc.assert(
      fc.property(fc.array(fc.jsonValue(), { minLength: 1, maxLength: 6 }), fc.array(fc.nat(), { maxLength: 8 }), (values, cuts) => {
        const text = values.map((v) => JSON.stringify(v)).join(' ');
        const points = [...new Set(cuts.map((c) => c % (text.length + 1)))].sort((a, b) => a - b);
        const found: unknown[] = [];
        let pending = '';
        let last = 0;
        for (const point of [...points, text.length]) {
          const { values: complete, rest } = splitJsonValues(pending + text.slice(last, point));
          found.push(...complete.map((v) => JSON.parse(v) as unknown));
          pending = rest;
          last = point;
        }
        // A trailing bare number or literal is only known complete once something follows it.
        const { values: tail } = splitJsonValues(`${pending} `);
        found.push(...tail.map((v) => JSON.parse(v) as unknown));
        expect(found).toEqual(values.map((v) => JSON.parse(JSON.stringify(v)) as unknown));
      }),
      { numRuns: 300 },
    );
  });
});

describe('routes', () => {
  it('every gateway path maps to its method under /v3, /v3beta and /v3alpha, POST only', () => {
    for (const [path, grpcPath] of GATEWAY_ROUTES) {
      for (const prefix of ['/v3/', '/v3beta/', '/v3alpha/']) {
        const route = resolveRoute('POST', `${prefix}${path}`);
        expect(route.kind === 'rpc' ? route.spec.path : route.kind).toBe(grpcPath);
      }
      expect(resolveRoute('GET', `/v3/${path}`)).toMatchObject({ kind: 'text', status: 405 });
    }
  });
});
