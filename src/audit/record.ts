/**
 * Builds audit records: one plain JSON object per call, stream milestone, client
 * connection or refused handshake, with Elastic Common Schema (ECS 8.11) field names
 * nested as objects. Records carry key names and metadata only; a CallEvent never holds
 * a value, and this builder copies only the fields it names, so nothing else that an
 * event might carry reaches the log. docs/audit-schema.md describes every field.
 *
 * Records are lean but self-contained: every call record names the caller by the
 * certificate fields a search uses (CN, O, OU, SANs, SHA-256 fingerprint) and the
 * connection id; the certificate in full (serial, issuer, subject DN, validity) and the
 * TLS version are written once per connection, in its `connection.open` record.
 *
 * Each record exists in two forms. buildCallRecord and the other build* functions make
 * the object (tests and scripts read it; serializeRecord turns it into a line). The
 * auditor calls the serialize* functions, which write the same line directly into a
 * JsonWriter's bytes, byte for byte: same fields, same order, same escaping, without an
 * object tree or intermediate strings, and with the per-connection parts serialized once
 * per identity. test/audit-record-fast-path.test.ts holds the two forms to that.
 */
import { displayName } from '../tls/identity.js';
import type { Identity } from '../tls/identity.js';
import type { Access, AccessOrigin, Decision } from '../policy/types.js';
import type { CallEvent, CallEventKind, ConnectionEvent, HandshakeEvent, KeySummary, UpstreamProgress } from './types.js';
import { putKey, writeKeyMember } from './key-render.js';
import { escapeRawUnsafe, JsonWriter } from './json-writer.js';
import { codeName as grpcCodeName } from '../transport/grpc/status.js';

/** ECS version the field names follow. */
export const ECS_VERSION = '8.11.0';

/**
 * Version of etcdgate's own record layout; bumped when a field changes meaning or moves.
 * 2: certificate details moved to connection records, `unknown` outcome, lease IDs in hex.
 */
export const AUDIT_SCHEMA_VERSION = 2;

/** A JSON value as the builder produces it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | JsonObject;
/** A JSON object as the builder produces it. */
export interface JsonObject {
  [field: string]: JsonValue;
}

/** What a record needs besides the event itself. */
export interface RecordContext {
  /** Unique id of this record (event.id). */
  readonly eventId: string;
  /** etcdgate's version. */
  readonly version: string;
  /** Version (content hash) of the policy that decided the call. */
  readonly policyVersion: string;
}


/** Kinds that open / close a long-lived stream: ECS adds "start" / "end" to event.type. */
const START_KINDS: ReadonlySet<CallEventKind> = new Set(['watch.create', 'keepalive.open', 'snapshot.start']);
const END_KINDS: ReadonlySet<CallEventKind> = new Set(['watch.end', 'keepalive.close', 'snapshot.end']);

/**
 * Bounds on what one request renders to, so a huge or deeply nested Txn cannot make a
 * record larger than a syslog receiver takes. Past them the request is marked truncated.
 */
const MAX_SUMMARY_NODES = 512;
const MAX_SUMMARY_DEPTH = 16;
const MAX_TEXT_LENGTH = 1024;

/** Fields a KeySummary renders itself; details never overwrite them. */
const RESERVED_REQUEST_FIELDS: ReadonlySet<string> = new Set([
  'op', 'key', 'key_base64', 'range_end', 'range_end_base64', 'compare', 'success', 'failure',
  'service', 'method', 'watch_id', 'truncated',
]);

/**
 * A string from the event, or undefined. Anything that is not a string (a Buffer that
 * slipped through a type cast, say) is dropped rather than serialized.
 */
function text(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  return value.length > MAX_TEXT_LENGTH ? `${value.slice(0, MAX_TEXT_LENGTH)}…` : value;
}

function texts(values: unknown): string[] {
  if (!Array.isArray(values)) return [];
  const out: string[] = [];
  for (const value of values) {
    const t = text(value);
    if (t !== undefined) out.push(t);
  }
  return out;
}

function finiteNumber(value: unknown): number | undefined {
  return typeof value === 'number' && Number.isFinite(value) ? value : undefined;
}

function isoDate(value: unknown): string | undefined {
  return value instanceof Date && !Number.isNaN(value.getTime()) ? value.toISOString() : undefined;
}

/** Nanoseconds as a JSON number (exact below 2^53 ns, about 104 days). */
function durationNs(value: unknown): number {
  if (typeof value === 'bigint') return Number(value);
  return finiteNumber(value) ?? 0;
}

/** Sets `target[field]` when the value is defined (keeps absent fields absent). */
function put(target: JsonObject, field: string, value: JsonValue | undefined): void {
  if (value !== undefined) target[field] = value;
}

/** Sets `target[field]` to a non-empty array, leaving it absent otherwise. */
function putList(target: JsonObject, field: string, values: string[]): void {
  if (values.length > 0) target[field] = values;
}

/** "lease_id", "prevKv" -> "lease_id", "prev_kv"; undefined for names unfit as a field. */
function detailField(name: string): string | undefined {
  const snake = name.replace(/([a-z0-9])([A-Z])/gu, '$1_$2').toLowerCase();
  return /^[a-z][a-z0-9_]{0,63}$/u.test(snake) ? snake : undefined;
}

/**
 * Node prints a DN one RDN per line ("CN=a\nO=b"), each value already escaped as RFC 2253
 * says (OpenSSL's ESC_2253: `\,` `\+` `\"` `\\` `\<` `\>` `\;`, a leading `#` or
 * space, a trailing space; control characters as `\XX`), and the values of a multi-valued
 * RDN joined by " + ". ECS wants "CN=a, O=b": the lines are joined as they are (escaping
 * them again would double every backslash), and " + " becomes "+". An unescaped "+" never
 * follows a space inside a value, so the replacement touches only separators.
 */
function distinguishedName(printed: unknown): string | undefined {
  const dn = text(printed);
  if (dn === undefined || dn === '') return undefined;
  return dn
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => line.replaceAll(' + ', '+'))
    .join(', ');
}

/** ECS tls.version/version_protocol from Node's "TLSv1.3". */
function tlsVersion(target: JsonObject, printed: unknown): void {
  const version = text(printed);
  if (version === undefined || version === '') return;
  const match = /^TLSv(\d(?:\.\d)?)$/u.exec(version);
  if (match?.[1] !== undefined) {
    target['version'] = match[1];
    target['version_protocol'] = 'tls';
  } else {
    target['version'] = version;
  }
}

/**
 * tls.client of each identity, built once: an identity is made once per connection and
 * frozen, so every record of that connection shares it. Cached objects are never mutated.
 */
const fullClientCache = new WeakMap<Identity, JsonObject>();
const leanClientCache = new WeakMap<Identity, JsonObject>();

/** ECS tls.client.* in full: the connection record and refused handshakes. */
function tlsClient(identity: Identity): JsonObject {
  let client = fullClientCache.get(identity);
  if (client === undefined) {
    client = buildTlsClient(identity);
    fullClientCache.set(identity, client);
  }
  return client;
}

/** ECS tls.client.* as every call record has it: the fields a search uses. */
function leanTlsClient(identity: Identity): JsonObject {
  let client = leanClientCache.get(identity);
  if (client === undefined) {
    client = buildLeanTlsClient(identity);
    leanClientCache.set(identity, client);
  }
  return client;
}

/** tls.client.x509.subject's name fields (CN, O, OU), members absent when empty. */
function subjectNames(identity: Identity): JsonObject {
  const subject: JsonObject = {};
  const cn = text(identity.cn);
  if (cn !== undefined && cn !== '') subject['common_name'] = [cn];
  putList(subject, 'organization', texts(identity.o));
  putList(subject, 'organizational_unit', texts(identity.ou));
  return subject;
}

function alternativeNames(identity: Identity): string[] {
  return [...texts(identity.dns), ...texts(identity.uri), ...texts(identity.ip)];
}

/** tls.client.hash, when the identity has a fingerprint; ECS asks for upper-case hex digests. */
function putHash(client: JsonObject, identity: Identity): void {
  const fingerprint = text(identity.fingerprint);
  if (fingerprint !== undefined && fingerprint !== '') client['hash'] = { sha256: fingerprint.toUpperCase() };
}

function buildTlsClient(identity: Identity): JsonObject {
  const subject = subjectNames(identity);
  put(subject, 'distinguished_name', distinguishedName(identity.subject));

  const x509: JsonObject = { subject };
  putList(x509, 'alternative_names', alternativeNames(identity));
  put(x509, 'serial_number', text(identity.serial));
  const issuer = distinguishedName(identity.issuer);
  if (issuer !== undefined) x509['issuer'] = { distinguished_name: issuer };
  put(x509, 'not_before', isoDate(identity.notBefore));
  put(x509, 'not_after', isoDate(identity.notAfter));

  const client: JsonObject = { x509 };
  putHash(client, identity);
  put(client, 'not_before', isoDate(identity.notBefore));
  put(client, 'not_after', isoDate(identity.notAfter));
  return client;
}

function buildLeanTlsClient(identity: Identity): JsonObject {
  const x509: JsonObject = {};
  const subject = subjectNames(identity);
  if (Object.keys(subject).length > 0) x509['subject'] = subject;
  putList(x509, 'alternative_names', alternativeNames(identity));
  const client: JsonObject = {};
  if (Object.keys(x509).length > 0) client['x509'] = x509;
  putHash(client, identity);
  return client;
}

/** Mutable budget shared by one request's recursive rendering. */
interface SummaryBudget {
  nodes: number;
  truncated: boolean;
}

/** Renders one KeySummary (recursively for Txn) into `target`. */
function renderSummary(summary: KeySummary, target: JsonObject, depth: number, budget: SummaryBudget): void {
  budget.nodes += 1;
  put(target, 'op', text(summary.op));
  putKey(target, 'key', summary.key);
  putKey(target, 'range_end', summary.rangeEnd);
  const details = summary.details;
  if (details !== undefined && details !== null && typeof details === 'object') {
    for (const [name, value] of Object.entries(details)) {
      const field = detailField(name);
      if (field === undefined || RESERVED_REQUEST_FIELDS.has(field)) continue;
      if (typeof value === 'boolean') target[field] = value;
      else if (typeof value === 'number') put(target, field, finiteNumber(value));
      else put(target, field, text(value));
    }
  }
  for (const branch of ['compare', 'success', 'failure'] as const) {
    const children = summary[branch];
    if (!Array.isArray(children)) continue;
    const rendered: JsonObject[] = [];
    for (const child of children as readonly KeySummary[]) {
      if (depth + 1 > MAX_SUMMARY_DEPTH || budget.nodes >= MAX_SUMMARY_NODES) {
        budget.truncated = true;
        break;
      }
      const node: JsonObject = {};
      renderSummary(child, node, depth + 1, budget);
      rendered.push(node);
    }
    target[branch] = rendered;
  }
}

/** The `etcd.request` object of a call. */
function renderRequest(event: CallEvent): JsonObject {
  const request: JsonObject = {};
  put(request, 'service', text(event.service));
  put(request, 'method', text(event.method));
  const budget: SummaryBudget = { nodes: 0, truncated: false };
  renderSummary(event.request, request, 0, budget);
  put(request, 'watch_id', text(event.watchId));
  if (budget.truncated) request['truncated'] = true;
  return request;
}

function commonHead(start: Date): JsonObject {
  return {
    '@timestamp': isoDate(start) ?? new Date().toISOString(),
    ecs: { version: ECS_VERSION },
  };
}

function etcdgateFields(context: RecordContext, kind: string, suppressed?: number): JsonObject {
  const fields: JsonObject = {
    schema_version: AUDIT_SCHEMA_VERSION,
    version: context.version,
    policy_version: context.policyVersion,
    event_kind: kind,
  };
  // net: refusals.suppressed summaries (src/network/refusal-limiter.ts).
  if (suppressed !== undefined) put(fields, 'suppressed_records', finiteNumber(suppressed));
  return fields;
}

/** net: action and event.type of the records that share the handshake shape (see HandshakeEvent.kind). */
function handshakeKind(event: HandshakeEvent): { kind: string; action: string; type: string; verified: boolean } {
  if (event.kind === 'connection.revoked') return { kind: event.kind, action: 'etcdgate.tls.recheck', type: 'end', verified: true };
  return { kind: event.kind ?? 'handshake.refused', action: 'etcdgate.tls.handshake', type: 'start', verified: false };
}

function sourceFields(address: unknown, port: unknown): JsonObject {
  const source: JsonObject = {};
  const ip = text(address);
  if (ip !== undefined && ip !== '') source['ip'] = ip;
  put(source, 'port', finiteNumber(port));
  return source;
}

/** A record as one line of JSON: no raw control, line or paragraph separator characters. */
export function serializeRecord(record: JsonObject): string {
  return escapeRawUnsafe(JSON.stringify(record));
}

/** ECS network/http/url of a call made through the JSON gateway (absent for gRPC calls); the path is bounded. */
function httpFields(event: CallEvent): { version: string; path: string } | undefined {
  const http = event.http;
  if (http === undefined) return undefined;
  return { version: text(http.version) ?? '', path: (text(http.path) ?? '').slice(0, 256) };
}

/** ECS event.outcome: `unknown` only for a request etcd got but never answered. */
export type Outcome = 'success' | 'failure' | 'unknown';

/**
 * The outcome of a call, as far as etcd's state goes. Denied: failure. Answered OK to the
 * client: success. etcd answered OK but the client did not get it (it left): success, the
 * request was carried out, unless etcdgate withheld the answer itself (a value it cannot
 * decrypt: nothing was read). Handed to etcd without an answer: unknown, etcd may have
 * applied it. Anything else (etcd refused it, or it never reached etcd): failure.
 */
export function callOutcome(denied: boolean, code: number, upstream: UpstreamProgress | undefined): Outcome {
  if (denied) return 'failure';
  if (code === 0) return 'success';
  if (upstream?.code === 0) return upstream.withheld === true ? 'failure' : 'success';
  if (upstream?.sent === true && upstream.code === undefined) return 'unknown';
  return 'failure';
}

/** What both forms of a call record derive from the event before writing it. */
interface CallFacts {
  readonly allowed: boolean;
  readonly denied: boolean;
  readonly code: number;
  readonly codeName: string;
  readonly outcome: Outcome;
  /** The status message, when a string (may be empty). */
  readonly message: string | undefined;
  readonly reason: string | undefined;
  /** event.type after the event's own type: "start", "end", "denied" as they apply. */
  readonly extraTypes: readonly string[];
  /** etcdgate.request_sent: for calls that tried etcd and did not end in code 0. */
  readonly requestSent: boolean | undefined;
  /** etcd.response.upstream_code: etcd's own code, when it differs from the client's. */
  readonly upstreamCode: number | undefined;
}

const NO_TYPES: readonly string[] = [];

function callFacts(event: CallEvent): CallFacts {
  const { decision, result } = event;
  const allowed = decision.allowed === true;
  const code = finiteNumber(result.code) ?? 2;
  const denied = !allowed || event.kind === 'keepalive.deny';
  const codeName = grpcCodeName(code);
  const message = text(result.message);
  let reason: string | undefined;
  if (denied) reason = text(decision.reason);
  else if (code !== 0) reason = message !== undefined && message !== '' ? message : codeName;
  else reason = text(decision.reason);
  const start = START_KINDS.has(event.kind);
  const end = END_KINDS.has(event.kind);
  const extraTypes = !start && !end && !denied ? NO_TYPES : [...(start ? ['start'] : []), ...(end ? ['end'] : []), ...(denied ? ['denied'] : [])];
  const upstream = progress(event.upstream);
  const upstreamCode = upstream?.code;
  return {
    allowed,
    denied,
    code,
    codeName,
    outcome: callOutcome(denied, code, upstream),
    message,
    reason,
    extraTypes,
    requestSent: upstream !== undefined && code !== 0 ? upstream.sent : undefined,
    upstreamCode: upstreamCode !== undefined && upstreamCode !== code ? upstreamCode : undefined,
  };
}

/** The event's UpstreamProgress, narrowed (anything malformed is left out). */
function progress(value: unknown): UpstreamProgress | undefined {
  if (typeof value !== 'object' || value === null || !('sent' in value) || typeof value.sent !== 'boolean') return undefined;
  const code = 'code' in value ? finiteNumber(value.code) : undefined;
  if (code === undefined) return { sent: value.sent };
  return 'withheld' in value && value.withheld === true ? { sent: value.sent, code, withheld: true } : { sent: value.sent, code };
}

/** "success[1].failure[0]": where a Txn operation sits, outermost first. */
function originPath(origin: AccessOrigin): string {
  let path = '';
  for (let at: AccessOrigin | undefined = origin, depth = 0; at !== undefined && depth < 80; at = at.parent, depth += 1) {
    const step = `${String(at.branch)}[${String(finiteNumber(at.index) ?? 0)}]`;
    path = path === '' ? step : `${step}.${path}`;
  }
  return path;
}

/** etcd.decision.refused: the first access the policy refused, with its Txn position. */
function refusedAccess(decision: Decision): JsonObject | undefined {
  const access: unknown = decision.refused;
  if (typeof access !== 'object' || access === null || !('kind' in access)) return undefined;
  const refused: JsonObject = {};
  const typed = access as Access;
  put(refused, 'access', text(typed.kind));
  if (typed.kind === 'read' || typed.kind === 'write') {
    const origin = typed.origin;
    if (origin !== undefined) {
      put(refused, 'op', text(origin.op));
      put(refused, 'branch', text(origin.branch));
      put(refused, 'index', finiteNumber(origin.index));
      put(refused, 'path', text(originPath(origin)));
    }
    putKey(refused, 'key', typed.key);
    if (Buffer.isBuffer(typed.rangeEnd) && typed.rangeEnd.length > 0) putKey(refused, 'range_end', typed.rangeEnd);
  } else if (typed.kind === 'capability') {
    put(refused, 'capability', text(typed.capability));
  }
  return refused;
}

/** Builds the record of one call (or stream event) described by the proxy. */
export function buildCallRecord(event: CallEvent, context: RecordContext): JsonObject {
  const { decision, result } = event;
  const facts = callFacts(event);

  const eventFields: JsonObject = {
    id: context.eventId,
    kind: 'event',
    module: 'etcdgate',
    dataset: 'etcdgate.audit',
    category: [event.category],
    type: [event.eventType, ...facts.extraTypes],
    action: text(event.action) ?? 'etcd.unknown',
    outcome: facts.outcome,
    duration: durationNs(event.durationNs),
  };
  put(eventFields, 'reason', facts.reason);

  const identity = event.peer.identity;
  const user: JsonObject = { name: displayName(identity), roles: texts(event.roles) };

  const decisionFields: JsonObject = { allowed: facts.allowed };
  put(decisionFields, 'role', text(decision.role));
  put(decisionFields, 'rule', text(decision.rule));
  put(decisionFields, 'reason', text(decision.reason));
  if (!facts.allowed) put(decisionFields, 'refused', refusedAccess(decision));

  const response: JsonObject = { code: facts.code, code_name: facts.codeName };
  if (facts.message !== undefined && facts.message !== '') response['message'] = facts.message;
  put(response, 'upstream_code', facts.upstreamCode);
  put(response, 'revision', text(result.revision));
  put(response, 'count', finiteNumber(result.count));
  put(response, 'bytes', finiteNumber(result.bytes));

  const record = commonHead(event.start);
  record['event'] = eventFields;
  record['user'] = user;
  record['source'] = sourceFields(event.peer.address, event.peer.port);
  record['tls'] = { client: leanTlsClient(identity) };
  record['etcd'] = { request: renderRequest(event), decision: decisionFields, response };
  const traceId = text(event.traceId);
  if (traceId !== undefined && traceId !== '') record['trace'] = { id: traceId };
  const http = httpFields(event);
  if (http !== undefined) {
    record['network'] = { protocol: 'http' };
    record['http'] = { version: http.version };
    record['url'] = { path: http.path };
  }
  const own = etcdgateFields(context, event.kind);
  put(own, 'connection_id', text(event.peer.connectionId));
  put(own, 'request_sent', facts.requestSent);
  put(own, 'range_read_wait_ms', finiteNumber(event.rangeReadWaitMs));
  record['etcdgate'] = own;
  return record;
}

/**
 * Builds the record of a refused TLS handshake (and, by `kind`, of the records sharing
 * its shape: a connection closed by a re-check, a summary of suppressed refusals). A
 * refused certificate was never verified, so what it claims goes under tls.client
 * (marked `etcdgate.identity_verified: false`) and never into user.name; a revoked
 * connection's certificate was verified when it connected, so its name is the user.
 */
export function buildHandshakeRecord(event: HandshakeEvent, context: RecordContext): JsonObject {
  const shape = handshakeKind(event);
  const eventFields: JsonObject = {
    id: context.eventId,
    kind: 'event',
    module: 'etcdgate',
    dataset: 'etcdgate.audit',
    category: ['authentication'],
    type: [shape.type, 'denied'],
    action: shape.action,
    outcome: 'failure',
  };
  put(eventFields, 'reason', text(event.reason));

  const record = commonHead(event.start);
  record['event'] = eventFields;
  const errorMessage = text(event.error);
  if (errorMessage !== undefined && errorMessage !== '') record['error'] = { message: errorMessage };
  record['source'] = sourceFields(event.address, event.port);
  if (event.identity !== undefined) {
    // A revoked connection's identity was verified when it connected; any other was never verified.
    if (shape.verified) record['user'] = { name: displayName(event.identity) };
    record['tls'] = { client: tlsClient(event.identity) };
  }
  const own = etcdgateFields(context, shape.kind, event.suppressed);
  put(own, 'connection_id', text(event.connectionId));
  if (event.identity !== undefined && !shape.verified) own['identity_verified'] = false;
  record['etcdgate'] = own;
  return record;
}

/**
 * Builds the record of a verified connection opened (the certificate in full, the TLS
 * version) or closed (how long it lasted, why etcdgate closed it, the searchable fields).
 */
export function buildConnectionRecord(event: ConnectionEvent, context: RecordContext): JsonObject {
  const open = event.kind === 'connection.open';
  const eventFields: JsonObject = {
    id: context.eventId,
    kind: 'event',
    module: 'etcdgate',
    dataset: 'etcdgate.audit',
    category: ['network'],
    type: ['connection', open ? 'start' : 'end'],
    action: 'etcdgate.tls.connection',
    outcome: 'success',
  };
  if (!open) eventFields['duration'] = durationNs(event.durationNs);
  put(eventFields, 'reason', text(event.reason));

  const record = commonHead(event.start);
  record['event'] = eventFields;
  record['user'] = { name: displayName(event.identity), roles: texts(event.roles) };
  record['source'] = sourceFields(event.address, event.port);
  const tls: JsonObject = {};
  if (open) tlsVersion(tls, event.tlsVersion);
  tls['client'] = open ? tlsClient(event.identity) : leanTlsClient(event.identity);
  record['tls'] = tls;
  const own = etcdgateFields(context, event.kind);
  put(own, 'connection_id', text(event.connectionId));
  record['etcdgate'] = own;
  return record;
}

// The same records written directly, into a JsonWriter. Every function below mirrors one
// step of the object builders above and writes exactly the characters serializeRecord
// would write for it; JSON members are written in the order the object builders insert
// them.
// ---------------------------------------------------------------------------------------

/** One writer serves every record: records are written synchronously, one at a time. */
const writer = new JsonWriter();

/** A string from the event through text(), as a member; left out when text() drops it. */
function textMember(w: JsonWriter, name: string, value: unknown): void {
  const t = text(value);
  if (t !== undefined) w.key(name).string(t);
}

/** A finite number as a member; left out otherwise. */
function numberMember(w: JsonWriter, name: string, value: unknown): void {
  const n = finiteNumber(value);
  if (n !== undefined) w.key(name).number(n);
}

/** JSON.stringify's text of a value the object builders copy without narrowing; undefined when it would be left out. */
function anyJson(value: unknown): string | undefined {
  const json = JSON.stringify(value) as string | undefined;
  return json === undefined ? undefined : escapeRawUnsafe(json);
}

/** A value copied without narrowing (context fields, event.kind), as a member; left out as JSON.stringify leaves it out. */
function anyMember(w: JsonWriter, name: string, value: unknown): void {
  if (typeof value === 'string') {
    w.key(name).string(value);
    return;
  }
  const json = anyJson(value);
  if (json !== undefined) w.key(name).json(json);
}

/** The same, as an array element: JSON.stringify writes null where a member would be left out. */
function anyItem(w: JsonWriter, value: unknown): void {
  w.item();
  if (typeof value === 'string') w.string(value);
  else w.json(anyJson(value) ?? 'null');
}

/** texts() as the elements of the open array. */
function textItems(w: JsonWriter, values: unknown): void {
  if (!Array.isArray(values)) return;
  for (const value of values) {
    const t = text(value);
    if (t !== undefined) w.item().string(t);
  }
}

/**
 * isoDate(value) ?? now, as a JSON string, formatting each whole second once: records of
 * one second share everything up to the milliseconds, and toISOString is a noticeable
 * part of a record.
 */
let isoSecond = Number.NaN;
let isoSecondPrefix = '';
function writeTimestamp(w: JsonWriter, value: unknown): void {
  const ms = value instanceof Date ? value.getTime() : Number.NaN;
  if (Number.isNaN(ms)) {
    w.raw('"').raw(new Date().toISOString()).raw('"');
    return;
  }
  const second = Math.floor(ms / 1000) * 1000;
  if (second !== isoSecond) {
    // "2024-01-15T10:00:00.000Z" -> "2024-01-15T10:00:00." (also right for 6-digit years).
    isoSecondPrefix = new Date(second).toISOString().slice(0, -4);
    isoSecond = second;
  }
  const milli = ms - second;
  w.raw('"').raw(isoSecondPrefix).raw(milli < 10 ? '00' : milli < 100 ? '0' : '').number(milli).raw('Z"');
}

/** What a connection contributes to its records, serialized once per identity. */
interface IdentityText {
  /** user.name as JSON, undefined when the object builder would leave it out. */
  readonly name: string | undefined;
  /** The lean tls.client of call records, as UTF-8 JSON. */
  readonly leanClient: Buffer;
  readonly leanClientAscii: boolean;
  /** tls.client in full (connection.open, refused handshakes), as JSON; made on first use. */
  fullClient?: string;
}

const identityTextCache = new WeakMap<Identity, IdentityText>();

function identityText(identity: Identity): IdentityText {
  let cached = identityTextCache.get(identity);
  if (cached === undefined) {
    const lean = escapeRawUnsafe(JSON.stringify(leanTlsClient(identity)));
    const leanClient = Buffer.from(lean, 'utf8');
    cached = { name: anyJson(displayName(identity)), leanClient, leanClientAscii: leanClient.length === lean.length };
    identityTextCache.set(identity, cached);
  }
  return cached;
}

function fullClientText(identity: Identity): string {
  const cached = identityText(identity);
  cached.fullClient ??= escapeRawUnsafe(JSON.stringify(tlsClient(identity)));
  return cached.fullClient;
}

/** The `user` object: name (when known), and roles unless `roles` is NO_ROLES (refused handshakes have none). */
const NO_ROLES = Symbol('no roles');
function writeUser(w: JsonWriter, who: IdentityText, roles: unknown): void {
  w.key('user').open('{');
  if (who.name !== undefined) w.key('name').json(who.name);
  if (roles !== NO_ROLES) {
    w.key('roles').open('[');
    textItems(w, roles);
    w.close(']');
  }
  w.close('}');
}

/** tls.version/version_protocol members per printed version ("TLSv1.3"); a handful exist. */
const tlsVersionText = new Map<string, string>();

function tlsVersionMembers(printed: unknown): string {
  if (typeof printed !== 'string') return '';
  let text = tlsVersionText.get(printed);
  if (text === undefined) {
    const fields: JsonObject = {};
    tlsVersion(fields, printed);
    text = escapeRawUnsafe(JSON.stringify(fields)).slice(1, -1);
    // Bounded: the printed version comes from Node, but nothing here relies on that.
    if (tlsVersionText.size < 16) tlsVersionText.set(printed, text);
  }
  return text;
}

/** detailField, remembered: detail names come from the decoders, a few dozen in all. */
const detailFieldCache = new Map<string, string | null>();

function cachedDetailField(name: string): string | undefined {
  let field = detailFieldCache.get(name);
  if (field === undefined) {
    field = detailField(name) ?? null;
    if (detailFieldCache.size < 256) detailFieldCache.set(name, field);
  }
  return field ?? undefined;
}

/** A detail value as JSON; undefined when the object builder would leave it out. */
function detailJson(value: unknown): string | undefined {
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number') return Number.isFinite(value) ? String(value) : undefined;
  const t = text(value);
  return t === undefined ? undefined : escapeRawUnsafe(JSON.stringify(t));
}

/**
 * The detail members of a summary. Two names can map to one field ("prevKv", "prev_kv"):
 * as in the object, the field keeps its first position and takes the last value.
 */
const detailFields: string[] = [];
const detailValues: string[] = [];
function writeDetails(w: JsonWriter, details: object): void {
  // Reused between records (writing is synchronous and this never recurses).
  const fields = detailFields;
  const values = detailValues;
  fields.length = 0;
  values.length = 0;
  for (const name in details) {
    if (!Object.hasOwn(details, name)) continue;
    const field = cachedDetailField(name);
    if (field === undefined || RESERVED_REQUEST_FIELDS.has(field)) continue;
    const json = detailJson((details as Record<string, unknown>)[name]);
    if (json === undefined) continue;
    const at = fields.indexOf(field);
    if (at >= 0) values[at] = json;
    else {
      fields.push(field);
      values.push(json);
    }
  }
  for (let i = 0; i < fields.length; i += 1) w.key(fields[i] as string).json(values[i] as string);
}

/** renderSummary's members, with the same budget and bounds. */
function writeSummary(w: JsonWriter, summary: KeySummary, depth: number, budget: SummaryBudget): void {
  budget.nodes += 1;
  textMember(w, 'op', summary.op);
  writeKeyMember(w, 'key', summary.key);
  writeKeyMember(w, 'range_end', summary.rangeEnd);
  const details = summary.details;
  if (details !== undefined && details !== null && typeof details === 'object') writeDetails(w, details);
  for (const branch of ['compare', 'success', 'failure'] as const) {
    const children = summary[branch];
    if (!Array.isArray(children)) continue;
    w.key(branch).open('[');
    for (const child of children as readonly KeySummary[]) {
      if (depth + 1 > MAX_SUMMARY_DEPTH || budget.nodes >= MAX_SUMMARY_NODES) {
        budget.truncated = true;
        break;
      }
      w.item().open('{');
      writeSummary(w, child, depth + 1, budget);
      w.close('}');
    }
    w.close(']');
  }
}

/** renderRequest, as the `request` member. */
function writeRequest(w: JsonWriter, event: CallEvent): void {
  w.key('request').open('{');
  textMember(w, 'service', event.service);
  textMember(w, 'method', event.method);
  const budget: SummaryBudget = { nodes: 0, truncated: false };
  writeSummary(w, event.request, 0, budget);
  textMember(w, 'watch_id', event.watchId);
  if (budget.truncated) w.key('truncated').raw('true');
  w.close('}');
}

/** sourceFields, as the `source` member. */
function writeSource(w: JsonWriter, address: unknown, port: unknown): void {
  w.key('source').open('{');
  const ip = text(address);
  if (ip !== undefined && ip !== '') w.key('ip').string(ip);
  numberMember(w, 'port', port);
  w.close('}');
}

const ECS_MEMBER = `{"version":"${ECS_VERSION}"}`;

/** The head of every record: `{"@timestamp":...,"ecs":{...},"event":{` up to event.dataset, the event object left open. */
function writeHead(w: JsonWriter, start: unknown, context: RecordContext): void {
  w.reset();
  w.open('{').key('@timestamp');
  writeTimestamp(w, start);
  w.key('ecs').raw(ECS_MEMBER);
  w.key('event').open('{');
  anyMember(w, 'id', context.eventId);
  w.members('"kind":"event","module":"etcdgate","dataset":"etcdgate.audit"');
}

/** Opens the `etcdgate` object and writes its common members; the caller adds its own and calls writeEnd. */
function writeOwnStart(w: JsonWriter, context: RecordContext, kind: unknown): void {
  w.key('etcdgate').open('{').key('schema_version').number(AUDIT_SCHEMA_VERSION);
  anyMember(w, 'version', context.version);
  anyMember(w, 'policy_version', context.policyVersion);
  anyMember(w, 'event_kind', kind);
}

/** Closes the `etcdgate` object and the record, appends `end` and returns the text. */
function writeEnd(w: JsonWriter, end: string): string {
  w.close('}').close('}').raw(end);
  return w.text();
}

/** refusedAccess, as the `refused` member; nothing when the decision names no access. */
function writeRefused(w: JsonWriter, decision: Decision): void {
  const access: unknown = decision.refused;
  if (typeof access !== 'object' || access === null || !('kind' in access)) return;
  const typed = access as Access;
  w.key('refused').open('{');
  textMember(w, 'access', typed.kind);
  if (typed.kind === 'read' || typed.kind === 'write') {
    const origin = typed.origin;
    if (origin !== undefined) {
      textMember(w, 'op', origin.op);
      textMember(w, 'branch', origin.branch);
      numberMember(w, 'index', origin.index);
      textMember(w, 'path', originPath(origin));
    }
    writeKeyMember(w, 'key', typed.key);
    if (Buffer.isBuffer(typed.rangeEnd) && typed.rangeEnd.length > 0) writeKeyMember(w, 'range_end', typed.rangeEnd);
  } else if (typed.kind === 'capability') {
    textMember(w, 'capability', typed.capability);
  }
  w.close('}');
}

/**
 * serializeRecord(buildCallRecord(event, context)), written directly, with `end` (the
 * line sinks' "\n") appended.
 */
export function serializeCallRecord(event: CallEvent, context: RecordContext, end = ''): string {
  const { decision, result } = event;
  const facts = callFacts(event);
  const w = writer;

  writeHead(w, event.start, context);
  w.key('category').open('[');
  anyItem(w, event.category);
  w.close(']').key('type').open('[');
  anyItem(w, event.eventType);
  for (const type of facts.extraTypes) w.item().string(type);
  w.close(']').key('action');
  const action = text(event.action);
  if (action === undefined) w.raw('"etcd.unknown"');
  else w.string(action);
  w.key('outcome').string(facts.outcome).key('duration').number(durationNs(event.durationNs));
  if (facts.reason !== undefined) w.key('reason').string(facts.reason);
  w.close('}');

  const identity = event.peer.identity;
  const who = identityText(identity);
  writeUser(w, who, event.roles);
  writeSource(w, event.peer.address, event.peer.port);
  w.key('tls').open('{').key('client').bytes(who.leanClient, who.leanClientAscii).close('}');

  w.key('etcd').open('{');
  writeRequest(w, event);
  w.key('decision').open('{').key('allowed').boolean(facts.allowed);
  textMember(w, 'role', decision.role);
  textMember(w, 'rule', decision.rule);
  textMember(w, 'reason', decision.reason);
  if (!facts.allowed) writeRefused(w, decision);
  w.close('}');
  w.key('response').open('{').key('code').number(facts.code).key('code_name').string(facts.codeName);
  if (facts.message !== undefined && facts.message !== '') w.key('message').string(facts.message);
  if (facts.upstreamCode !== undefined) w.key('upstream_code').number(facts.upstreamCode);
  textMember(w, 'revision', result.revision);
  numberMember(w, 'count', result.count);
  numberMember(w, 'bytes', result.bytes);
  w.close('}').close('}');

  const traceId = text(event.traceId);
  if (traceId !== undefined && traceId !== '') w.key('trace').open('{').key('id').string(traceId).close('}');
  const http = httpFields(event);
  if (http !== undefined) {
    w.key('network').raw('{"protocol":"http"}');
    w.key('http').open('{').key('version').string(http.version).close('}');
    w.key('url').open('{').key('path').string(http.path).close('}');
  }
  writeOwnStart(w, context, event.kind);
  textMember(w, 'connection_id', event.peer.connectionId);
  if (facts.requestSent !== undefined) w.key('request_sent').boolean(facts.requestSent);
  numberMember(w, 'range_read_wait_ms', event.rangeReadWaitMs);
  return writeEnd(w, end);
}

/** serializeRecord(buildHandshakeRecord(event, context)), written directly, with `end` appended. */
export function serializeHandshakeRecord(event: HandshakeEvent, context: RecordContext, end = ''): string {
  const shape = handshakeKind(event);
  const w = writer;
  writeHead(w, event.start, context);
  w.key('category').raw('["authentication"]').key('type').open('[').item().string(shape.type).item().raw('"denied"').close(']');
  w.key('action').string(shape.action).key('outcome').raw('"failure"');
  textMember(w, 'reason', event.reason);
  w.close('}');
  const errorMessage = text(event.error);
  if (errorMessage !== undefined && errorMessage !== '') w.key('error').open('{').key('message').string(errorMessage).close('}');
  writeSource(w, event.address, event.port);
  if (event.identity !== undefined) {
    if (shape.verified) writeUser(w, identityText(event.identity), NO_ROLES);
    w.key('tls').open('{').key('client').json(fullClientText(event.identity)).close('}');
  }
  writeOwnStart(w, context, shape.kind);
  numberMember(w, 'suppressed_records', event.suppressed);
  textMember(w, 'connection_id', event.connectionId);
  if (event.identity !== undefined && !shape.verified) w.key('identity_verified').raw('false');
  return writeEnd(w, end);
}

/** serializeRecord(buildConnectionRecord(event, context)), written directly, with `end` appended. */
export function serializeConnectionRecord(event: ConnectionEvent, context: RecordContext, end = ''): string {
  const open = event.kind === 'connection.open';
  const w = writer;
  writeHead(w, event.start, context);
  w.key('category').raw('["network"]').key('type').raw(open ? '["connection","start"]' : '["connection","end"]');
  w.key('action').raw('"etcdgate.tls.connection"').key('outcome').raw('"success"');
  if (!open) w.key('duration').number(durationNs(event.durationNs));
  textMember(w, 'reason', event.reason);
  w.close('}');
  const who = identityText(event.identity);
  writeUser(w, who, event.roles);
  writeSource(w, event.address, event.port);
  w.key('tls').open('{');
  if (open) {
    const version = tlsVersionMembers(event.tlsVersion);
    if (version !== '') w.members(version);
    w.key('client').json(fullClientText(event.identity));
  } else {
    w.key('client').bytes(who.leanClient, who.leanClientAscii);
  }
  w.close('}');
  writeOwnStart(w, context, event.kind);
  textMember(w, 'connection_id', event.connectionId);
  return writeEnd(w, end);
}
