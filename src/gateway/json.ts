/**
 * The JSON form of etcd's messages, as etcd 3.4's gRPC gateway reads and writes it
 * (grpc-gateway v1 with its default marshaler: golang/protobuf jsonpb, OrigName on,
 * EmitDefaults and EnumsAsInts off). protobufjs, loaded with etcdgate's own protos/,
 * does the mapping between plain objects and protobuf bytes; this file adds what jsonpb
 * decides and protobufjs does not:
 *
 * Reading (request JSON -> protobuf bytes), as observed against etcd 3.4.23:
 * - a field is named by its proto name ("range_end") or its JSON name ("rangeEnd");
 *   when both are given, the JSON name wins. Unknown fields are ignored.
 * - int64/uint64/int32/uint32 take a JSON integer or a string holding one (blanks
 *   around it allowed); fractions, exponents, hex and out-of-range values are refused.
 * - bytes take standard base64 with padding (line breaks ignored); URL-safe or
 *   unpadded base64 is refused. bool takes only true/false. enum takes a known name
 *   or an integer. string takes only a JSON string. null means "not set".
 * - the body holds one JSON value; what follows it is ignored (Go's decoder reads one
 *   value). An empty body or `null` is the empty request.
 *
 * Where etcdgate is stricter than etcd, on purpose (docs/gateway.md):
 * - two members of one oneof in the same object (jsonpb keeps a random one: it walks
 *   a Go map) are refused, so the request authorized is the request etcd runs;
 * - an object with the same key twice and different values is refused (lossless-json).
 *
 * Numbers are parsed without loss (lossless-json): a lease ID such as
 * 7587862024383441930 sent as a JSON number must not become the neighbouring lease.
 *
 * Writing (protobuf bytes -> response JSON): proto field names, int64 as decimal
 * strings, bytes as standard base64, enums by name, fields at their default value
 * left out (except a set oneof member), fields in field-number order, and `<`, `>`,
 * `&`, U+2028 and U+2029 escaped as Go's encoding/json escapes them.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isLosslessNumber, parse as parseLossless } from 'lossless-json';
import protobuf from 'protobufjs';

/** A request body that is not valid JSON for its message: answered 400 with gRPC code INVALID_ARGUMENT. */
export class JsonMappingError extends Error {
  override readonly name = 'JsonMappingError';
}

/** The JSON codec of one RPC: its request from JSON, its response to JSON. */
export interface MethodJson {
  /** The request message's full name, e.g. "etcdserverpb.RangeRequest". */
  readonly requestType: string;
  readonly responseType: string;
  /** Parses one request value (see parseJsonValue) into the request's protobuf bytes. Throws JsonMappingError. */
  requestFromJson(value: unknown): Buffer;
  /** The response bytes as a plain object (proto names, int64 as strings), for etcdgate's own probes. */
  decodeResponse(bytes: Buffer): Record<string, unknown>;
  /** The response bytes as etcd's gateway writes them. Throws if the bytes do not decode. */
  responseToJson(bytes: Buffer): string;
}

/** The .proto files with services, relative to protos/. */
const PROTO_FILES = ['etcdserverpb/rpc.proto', 'v3lockpb/v3lock.proto', 'v3electionpb/v3election.proto'];

/** Finds protos/ from this module, in the source tree (src/gateway) and the build (dist/src/gateway). */
function protoDirectory(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (let up = 0; up < 4; up++) {
    const candidate = path.join(dir, 'protos');
    if (existsSync(path.join(candidate, PROTO_FILES[0] ?? ''))) return candidate;
    dir = path.dirname(dir);
  }
  throw new Error('protos/ not found next to etcdgate (the JSON gateway needs etcdserverpb/rpc.proto)');
}

/**
 * etcd's services and messages, loaded from protos/ with proto field names kept.
 * Built once by the gateway at start; a missing or broken protos/ stops etcdgate there.
 */
export class EtcdJson {
  private readonly root: protobuf.Root;
  private readonly methods = new Map<string, MethodJson>();

  constructor(directory: string = protoDirectory()) {
    const root = new protobuf.Root();
    root.resolvePath = (_origin, target) => path.join(directory, target);
    root.loadSync(PROTO_FILES, { keepCase: true });
    root.resolveAll();
    this.root = root;
  }

  /** The codec of a gRPC method path ("/etcdserverpb.KV/Range"); throws if protos/ lacks it. */
  method(grpcPath: string): MethodJson {
    const known = this.methods.get(grpcPath);
    if (known !== undefined) return known;
    const [, service, name] = /^\/([^/]+)\/([^/]+)$/u.exec(grpcPath) ?? [];
    const method = this.root.lookupService(service ?? '').methods[name ?? ''];
    if (method === undefined) throw new Error(`protos/ has no method ${grpcPath}`);
    const request = this.root.lookupType(method.requestType);
    const response = this.root.lookupType(method.responseType);
    const codec: MethodJson = {
      requestType: fullName(request),
      responseType: fullName(response),
      requestFromJson: (value) => Buffer.from(request.encode(request.fromObject(objectFor(request, value, fullName(request)))).finish()),
      decodeResponse: (bytes) => render(response, response.toObject(response.decode(bytes), TO_OBJECT)),
      responseToJson: (bytes) => goJson(render(response, response.toObject(response.decode(bytes), TO_OBJECT))),
    };
    this.methods.set(grpcPath, codec);
    return codec;
  }
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: String, enums: String, bytes: String, defaults: false, arrays: false, json: true };

function fullName(type: protobuf.Type): string {
  return type.fullName.replace(/^\./u, '');
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

/** JSON's insignificant whitespace. */
const JSON_BLANK = /^[ \t\n\r]*|[ \t\n\r]*$/gu;

/**
 * Cuts the first JSON value out of `text` and parses it without losing number
 * precision (numbers become LosslessNumber). Returns null for an empty body. What
 * follows the first value is ignored, as by Go's json.Decoder. Throws JsonMappingError.
 */
export function parseJsonValue(text: string): unknown {
  const end = firstValueEnd(text, 0);
  if (end === undefined) return null;
  try {
    return parseLossless(text.slice(0, end));
  } catch (error: unknown) {
    throw new JsonMappingError(error instanceof Error ? error.message : 'invalid JSON');
  }
}

/**
 * Splits a body holding JSON values one after another (a watch or keep-alive request
 * stream) at the end of each complete value. Returns the values' texts and the
 * unfinished rest, which the caller keeps until more bytes arrive.
 */
export function splitJsonValues(text: string): { values: string[]; rest: string } {
  const values: string[] = [];
  let start = 0;
  for (;;) {
    const from = skipBlanks(text, start);
    if (from >= text.length) return { values, rest: '' };
    const end = firstValueEnd(text, from, true);
    if (end === undefined) return { values, rest: text.slice(from) };
    values.push(text.slice(from, end));
    start = end;
  }
}

function skipBlanks(text: string, from: number): number {
  let i = from;
  while (i < text.length && (text[i] === ' ' || text[i] === '\t' || text[i] === '\n' || text[i] === '\r')) i++;
  return i;
}

/**
 * Index just past the JSON value starting at or after `from`; undefined when the text
 * holds no value (only blanks) or, with `needComplete`, when the value is cut short.
 * Only the value's extent is found here (strings, nesting); lossless-json checks it.
 * Without `needComplete` an unfinished value runs to the end, so the parser reports it.
 */
function firstValueEnd(text: string, from: number, needComplete = false): number | undefined {
  let i = skipBlanks(text, from);
  if (i >= text.length) return undefined;
  const first = text[i];
  if (first !== '{' && first !== '[' && first !== '"') {
    // A scalar (number, true, false, null, or junk): up to the next delimiter.
    while (i < text.length && !' \t\n\r{}[],:"'.includes(text[i] ?? '')) i++;
    if (needComplete && i >= text.length) return undefined;
    return i;
  }
  let depth = 0;
  let inString = false;
  for (; i < text.length; i++) {
    const c = text[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') {
        inString = false;
        if (depth === 0) return i + 1;
      }
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      depth--;
      if (depth <= 0) return i + 1;
    }
  }
  return needComplete ? undefined : text.length;
}

/** The JSON name protoc gives a field: underscores dropped, the letter after each upper-cased. */
function jsonName(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/gu, (_match, letter: string) => letter.toUpperCase()).replace(/_/gu, '');
}

const INTEGER = /^-?(?:0|[1-9][0-9]*)$/u;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/u;

const INT_RANGES: Readonly<Record<string, readonly [bigint, bigint]>> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !isLosslessNumber(value);
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'array';
  if (isLosslessNumber(value)) return `number ${value.toString().slice(0, 32)}`;
  return typeof value === 'object' ? 'object' : typeof value;
}

/** An integer field's value as the decimal text protobufjs takes (Long.fromString), range-checked. */
function integerText(value: unknown, kind: string, where: string): string | number {
  let digits: string;
  if (isLosslessNumber(value)) digits = value.toString();
  else if (typeof value === 'string') digits = value.replace(JSON_BLANK, '');
  else throw new JsonMappingError(`${where}: cannot take ${describe(value)} as ${kind}`);
  const range = INT_RANGES[kind];
  if (!INTEGER.test(digits) || range === undefined) throw new JsonMappingError(`${where}: ${JSON.stringify(digits.slice(0, 32))} is not an integer of type ${kind}`);
  const n = BigInt(digits);
  if (n < range[0] || n > range[1]) throw new JsonMappingError(`${where}: ${digits.slice(0, 32)} is out of range for ${kind}`);
  // 32-bit kinds are plain numbers for protobufjs; 64-bit ones stay exact as text.
  return kind.endsWith('32') ? Number(n) : n.toString();
}

function scalarFor(field: protobuf.Field, value: unknown, where: string): unknown {
  const resolved = field.resolvedType;
  if (resolved instanceof protobuf.Enum) {
    if (typeof value === 'string') {
      if (!Object.hasOwn(resolved.values, value)) throw new JsonMappingError(`${where}: unknown value ${JSON.stringify(value.slice(0, 64))} for enum ${fullName(resolved as unknown as protobuf.Type)}`);
      return resolved.values[value];
    }
    return integerText(value, 'int32', where);
  }
  if (resolved instanceof protobuf.Type) return objectFor(resolved, value, where);
  switch (field.type) {
    case 'string':
      if (typeof value !== 'string') throw new JsonMappingError(`${where}: cannot take ${describe(value)} as string`);
      return value;
    case 'bytes': {
      if (typeof value !== 'string') throw new JsonMappingError(`${where}: cannot take ${describe(value)} as base64 bytes`);
      const compact = value.replace(/[\r\n]/gu, '');
      if (!BASE64.test(compact)) throw new JsonMappingError(`${where}: illegal base64 data (standard base64 with padding expected)`);
      return Buffer.from(compact, 'base64');
    }
    case 'bool':
      if (typeof value !== 'boolean') throw new JsonMappingError(`${where}: cannot take ${describe(value)} as bool`);
      return value;
    case 'double':
    case 'float':
      // etcd's API has no floating-point fields; refuse rather than guess jsonpb's rules.
      throw new JsonMappingError(`${where}: floating-point fields are not supported`);
    default:
      return integerText(value, field.type, where);
  }
}

/**
 * Checks a parsed JSON value against message type `type` and returns the plain object
 * protobufjs's fromObject takes (proto field names, bytes as Buffers, 64-bit integers
 * as decimal text). Throws JsonMappingError naming the field.
 */
function objectFor(type: protobuf.Type, value: unknown, where: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) throw new JsonMappingError(`${where}: cannot take ${describe(value)} as message ${fullName(type)}`);
  const out: Record<string, unknown> = {};
  for (const field of type.fieldsArray) {
    const camel = jsonName(field.name);
    // jsonpb: when both names are present, the JSON (camel-case) name wins.
    const key = Object.hasOwn(value, camel) ? camel : Object.hasOwn(value, field.name) ? field.name : undefined;
    if (key === undefined) continue;
    const raw = value[key];
    if (raw === null) continue;
    const at = `${where}.${field.name}`;
    if (field.repeated) {
      if (!Array.isArray(raw)) throw new JsonMappingError(`${at}: cannot take ${describe(raw)} as a repeated field`);
      out[field.name] = raw.map((item: unknown, i) => {
        if (item === null) throw new JsonMappingError(`${at}[${i}]: null in a repeated field`);
        return scalarFor(field, item, `${at}[${i}]`);
      });
    } else {
      out[field.name] = scalarFor(field, raw, at);
    }
  }
  for (const oneof of type.oneofsArray) {
    const set = oneof.oneof.filter((name) => Object.hasOwn(out, name));
    if (set.length > 1) throw new JsonMappingError(`${where}: more than one of ${set.join(', ')} (oneof ${oneof.name}) is set`);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Writing
// ---------------------------------------------------------------------------

/** What protobufjs's toObject gives for a field at its proto3 default, which jsonpb leaves out. */
function isDefault(field: protobuf.Field, value: unknown): boolean {
  if (field.resolvedType instanceof protobuf.Enum) return value === 0 || value === field.resolvedType.valuesById[0];
  return value === 0 || value === '0' || value === '' || value === false;
}

/** toObject's output for `type`, with defaults dropped and nested messages done the same. */
function render(type: protobuf.Type, object: Record<string, unknown>): Record<string, unknown> {
  for (const field of type.fieldsArray) {
    if (!Object.hasOwn(object, field.name)) continue;
    const value = object[field.name];
    const resolved = field.resolvedType;
    if (resolved instanceof protobuf.Type) {
      if (field.repeated && Array.isArray(value)) {
        object[field.name] = value.map((item: unknown) => (isPlainObject(item) ? render(resolved, item) : item));
      } else if (isPlainObject(value)) {
        object[field.name] = render(resolved, value);
      }
    } else if (!field.repeated && field.partOf === null && isDefault(field, value)) {
      // A oneof member is written even at its default (jsonpb marks it as set).
      Reflect.deleteProperty(object, field.name);
    }
  }
  return object;
}

/** Go's encoding/json escapes these in strings (HTML safety and JavaScript line terminators). */
const GO_ESCAPES: Readonly<Record<string, string>> = { '<': '\\u003c', '>': '\\u003e', '&': '\\u0026', '\u2028': '\\u2028', '\u2029': '\\u2029' };

/** JSON text of `value` as Go's encoding/json writes it (compact, with its escapes). */
export function goJson(value: unknown): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/gu, (c) => GO_ESCAPES[c] ?? c);
}
