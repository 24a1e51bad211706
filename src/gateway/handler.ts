/**
 * Serves one gateway exchange: resolves its route, reads its body within the limits,
 * turns the JSON into the RPC's protobuf request and hands it to the unary pipeline,
 * which decides, forwards and audits exactly as for gRPC.
 *
 * Limits (each refused with etcd's gateway error shape and an audit record when the
 * route is an RPC): a body over server.maxRecvBytes is answered 413 and the
 * connection (HTTP/1.1) or stream (HTTP/2) dropped, since its rest is not read; a body
 * that does not arrive within gateway.bodyTimeoutMs is answered 408 the same way; a
 * body that is not valid JSON for the request message is 400 (code 3).
 */
import type { MethodSpec } from '../etcd/types.js';
import type { GatewayConfig } from '../config/types.js';
import type { Logger } from '../observability/logger.js';
import type { Gate } from '../proxy/gate.js';
import type { Service } from '../proxy/services.js';
import { UNREADABLE_DECISION, statusOf, type Status } from '../proxy/status.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import { errorBody, httpStatusOf as httpStatusOfCode, sendJson, sendText } from './answers.js';
import { JsonCall } from './call.js';
import type { Exchange } from './exchange.js';
import { JsonMappingError, parseJsonValue, type EtcdJson } from './json.js';
import { serveHealth, serveVersion } from './probes.js';
import { serveStream } from './stream.js';
import { resolveRoute } from './routes.js';

/** What the handler is built from, once, by src/gateway/index.ts. */
export interface HandlerDeps {
  readonly gate: Gate;
  readonly services: ReadonlyMap<string, Service>;
  readonly upstream: UpstreamCalls;
  readonly logger: Logger;
  readonly json: EtcdJson;
  /** server.maxRecvBytes: the largest body. */
  readonly maxRecvBytes: number;
  readonly config: GatewayConfig;
}

/** Statuses of requests refused while their body was read (gRPC codes; the HTTP status follows). */
const BODY_TOO_LARGE = (max: number): Status => ({ code: 8, details: `etcdgate: request body larger than server.maxRecvBytes (${max})` });
const BODY_TOO_SLOW: Status = { code: 4, details: 'etcdgate: request body not received in time' };

type BodyResult = { readonly ok: true; readonly body: Buffer } | { readonly ok: false; readonly status: Status; readonly httpStatus: number } | { readonly ok: false; readonly status: undefined };

/** Reads the whole body, bounded in size and time (`keep` false: read to its end and dropped). Never rejects. */
function readBody(exchange: Exchange, maxBytes: number, timeoutMs: number, keep = true): Promise<BodyResult> {
  return new Promise((resolve) => {
    const declared = Number(exchange.headers['content-length'] ?? '0');
    if (maxBytes >= 0 && declared > maxBytes) {
      resolve({ ok: false, status: BODY_TOO_LARGE(maxBytes), httpStatus: 413 });
      return;
    }
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const settle = (result: BodyResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      exchange.body.removeListener('data', onData);
      resolve(result);
    };
    const onData = (chunk: Buffer): void => {
      received += chunk.length;
      if (maxBytes >= 0 && received > maxBytes) settle({ ok: false, status: BODY_TOO_LARGE(maxBytes), httpStatus: 413 });
      else if (keep) chunks.push(chunk);
    };
    const timer = setTimeout(() => settle({ ok: false, status: BODY_TOO_SLOW, httpStatus: 408 }), timeoutMs);
    exchange.body.on('data', onData);
    exchange.body.once('end', () => settle({ ok: true, body: Buffer.concat(chunks) }));
    exchange.body.once('error', () => settle({ ok: false, status: undefined }));
    exchange.onGone(() => settle({ ok: false, status: undefined }));
  });
}

/** Serves one exchange; never rejects (a bug answers 500 rather than hanging the client). */
export function serveExchange(deps: HandlerDeps, exchange: Exchange): void {
  route(deps, exchange).catch((error: unknown) => {
    deps.logger.error({ err: error }, 'unexpected error in the JSON gateway');
    if (!exchange.gone) sendJson(exchange, 500, errorBody(13, 'etcdgate: internal error'), true);
  });
}

async function route(deps: HandlerDeps, exchange: Exchange): Promise<void> {
  const resolved = resolveRoute(exchange.method, exchange.target);
  if (resolved.kind !== 'rpc') {
    // Answered once the request has ended, its body (if any) read and dropped within the
    // same limits as an RPC's: answering first would leave the client's further frames
    // of the stream (a malformed trailer, a wrong content-length) to a closed stream,
    // where the protocol errors they carry would go unanswered.
    const body = await readBody(exchange, deps.maxRecvBytes, deps.config.bodyTimeoutMs, false);
    if (!body.ok) {
      if (body.status !== undefined && !exchange.gone) sendText(exchange, body.httpStatus, `${body.status.details}\n`, {}, true);
      return;
    }
  }
  switch (resolved.kind) {
    case 'rpc':
      return serveRpc(deps, exchange, resolved.spec, resolved.path);
    case 'version':
      return serveVersion(deps, exchange);
    case 'health':
      return serveHealth(deps, exchange, resolved.query);
    case 'options':
      exchange.send(200, { 'content-length': 0 }, '');
      return;
    case 'redirect': {
      // Go's http.Redirect: a short HTML body for GET and HEAD only.
      const body = exchange.method === 'GET' || exchange.method === 'HEAD' ? `<a href="${escapeHtml(resolved.location)}">Moved Permanently</a>.\n\n` : '';
      exchange.send(301, { location: resolved.location, ...(body === '' ? {} : { 'content-type': 'text/html; charset=utf-8' }), 'content-length': Buffer.byteLength(body) }, body);
      return;
    }
    case 'text':
      sendText(exchange, resolved.status, resolved.body, resolved.allow === undefined ? {} : { allow: resolved.allow });
      return;
  }
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/gu, (c) => `&#${c.charCodeAt(0)};`);
}

async function serveRpc(deps: HandlerDeps, exchange: Exchange, spec: MethodSpec, path: string): Promise<void> {
  const { gate } = deps;
  const started = gate.start();
  const http = { version: exchange.version, path: path.slice(0, 256) };
  const service = deps.services.get(spec.path);
  const request = { op: spec.method };
  const record = (status: Status): void => gate.refused(spec, exchange.client, request, UNREADABLE_DECISION, status, started, http);
  const refuse = (status: Status, httpStatus: number, close: boolean): void => {
    if (!exchange.gone) sendJson(exchange, httpStatus, errorBody(status.code, status.details), close);
    record(status);
  };
  // The same admission as a gRPC call, before any of the body is read.
  const { caller, refusal } = gate.admit(exchange.client);
  if (refusal !== undefined || caller === undefined || service === undefined) {
    const decision = refusal ?? UNREADABLE_DECISION;
    const status = statusOf(decision);
    if (!exchange.gone) sendJson(exchange, httpStatusOfCode(status.code), errorBody(status.code, status.details), true);
    gate.refused(spec, exchange.client, request, decision, status, started, http);
    return;
  }
  const json = deps.json.method(spec.path);
  if (spec.shape !== 'unary') {
    await serveStream(spec, json, exchange, {
      http,
      firstMessageTimeoutMs: deps.config.bodyTimeoutMs,
      onRefused: record,
      open: (call) => service.open(spec, caller, call, started),
    });
    return;
  }
  const body = await readBody(exchange, deps.maxRecvBytes, deps.config.bodyTimeoutMs);
  if (!body.ok) {
    // The rest of the body is not read: the connection cannot carry another request.
    if (body.status !== undefined) refuse(body.status, body.httpStatus, true);
    return;
  }
  let message: Buffer;
  try {
    message = json.requestFromJson(parseJsonValue(body.body.toString('utf8')));
  } catch (error: unknown) {
    if (!(error instanceof JsonMappingError)) throw error;
    refuse({ code: 3, details: error.message }, 400, false);
    return;
  }
  const call = new JsonCall(exchange, json, spec.path, false, http);
  call.feed(message);
  call.halfClose();
  service.open(spec, caller, call, started);
}
