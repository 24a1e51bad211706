/**
 * Streaming calls over the JSON gateway (watch, lease/keepalive, maintenance/snapshot,
 * election/observe), served by the gRPC path's own stream flows (src/proxy/watch.ts,
 * lease.ts, stream-flow.ts) through a JsonCall (call.ts). So a watch over JSON is
 * authorized per create request, answered in-band when refused, limited, revalidated on
 * policy reload and audited exactly as over gRPC.
 *
 * The JSON side is etcd's gateway's (grpc-gateway v1):
 * - the request body is a sequence of JSON request objects, sent to etcd one by one as
 *   each is complete; the body's end half-closes the call. A first object that is not
 *   a valid request is answered 500 (code 2, UNKNOWN) and nothing is called; a later
 *   one half-closes the call, as etcd's gateway does.
 * - each response message is written as `{"result":{...}}` and a newline, as soon as
 *   it arrives (chunked on HTTP/1.1); the answer is 200 once the first is written.
 * - a status that ends the call is written as `{"error":{"grpc_code","http_code",
 *   "message","http_status"}}`; if nothing was written yet, with the HTTP status of
 *   its code.
 *
 * Backpressure runs both ways: a client that stops reading pauses the relay (and the
 * watch handlers' unread-data bound applies); the body is paused while etcd is slow.
 * Streaming calls are the open-ended ones, so gateway.bodyTimeoutMs does not apply to
 * their body; over HTTP/1.1 the whole request must still arrive within
 * headersTimeoutMs + bodyTimeoutMs (Node's request timeout), the answer can run on.
 */
import type { HttpTransport } from '../audit/types.js';
import type { MethodSpec } from '../etcd/types.js';
import type { Status } from '../proxy/status.js';
import { sendStatus } from './answers.js';
import { JsonCall } from './call.js';
import type { Exchange } from './exchange.js';
import { JsonMappingError, parseJsonValue, splitJsonValues, type MethodJson } from './json.js';

const FIRST_MESSAGE_TOO_SLOW: Status = { code: 4, details: 'etcdgate: first request of the stream not received in time' };

/** Feeds the body's JSON objects to the call as request messages; the body's end half-closes it. */
function relayBody(exchange: Exchange, json: MethodJson, call: JsonCall, rest: string): void {
  let pending = '';
  let closed = false;
  const take = (text: string): void => {
    if (closed) return;
    const { values, rest: unfinished } = splitJsonValues(pending + text);
    pending = unfinished;
    for (const value of values) {
      let message: Buffer;
      try {
        message = json.requestFromJson(parseJsonValue(value));
      } catch (error: unknown) {
        if (!(error instanceof JsonMappingError)) throw error;
        // etcd's gateway stops sending (half-close) at the first request it cannot decode.
        closed = true;
        exchange.body.removeAllListeners('data');
        exchange.body.resume();
        call.halfClose();
        return;
      }
      call.feed(message);
    }
  };
  take(rest);
  exchange.body.on('data', take);
  exchange.body.once('end', () => {
    if (closed) return;
    closed = true;
    call.halfClose();
  });
}

/**
 * Reads the body until its first complete JSON object (or its end); resolves with it,
 * the text after it, and whether the body ended; undefined if it does not come in time.
 */
function firstValue(exchange: Exchange, timeoutMs: number): Promise<{ first: string | undefined; rest: string; ended: boolean } | undefined> {
  return new Promise((resolve) => {
    let text = '';
    const timer = setTimeout(() => {
      exchange.body.removeListener('data', onData);
      exchange.body.removeListener('end', onEnd);
      resolve(undefined);
    }, timeoutMs);
    const onData = (chunk: string): void => {
      text += chunk;
      const { values } = splitJsonValues(text);
      const first = values[0];
      if (first === undefined) return;
      clearTimeout(timer);
      exchange.body.removeListener('data', onData);
      exchange.body.removeListener('end', onEnd);
      exchange.body.pause();
      resolve({ first, rest: text.slice(text.indexOf(first) + first.length), ended: false });
    };
    const onEnd = (): void => {
      clearTimeout(timer);
      exchange.body.removeListener('data', onData);
      resolve({ first: text.trim() === '' ? undefined : text, rest: '', ended: true });
    };
    exchange.body.setEncoding('utf8');
    exchange.body.on('data', onData);
    exchange.body.once('end', onEnd);
  });
}

/** How a streaming call is served: its audit transport, the wait for its first request, the record of a refusal, the flow. */
export interface StreamOptions {
  readonly http: HttpTransport;
  readonly firstMessageTimeoutMs: number;
  readonly onRefused: (status: Status) => void;
  /** Hands the call to its service's flow (admission already done). */
  readonly open: (call: JsonCall) => void;
}

/** Serves a streaming RPC over the exchange. */
export async function serveStream(spec: MethodSpec, json: MethodJson, exchange: Exchange, options: StreamOptions): Promise<void> {
  const { http, onRefused } = options;
  const head = await firstValue(exchange, options.firstMessageTimeoutMs);
  if (head === undefined) {
    // The rest of the body is not read: the connection cannot carry another request.
    sendStatus(exchange, FIRST_MESSAGE_TOO_SLOW, true);
    onRefused(FIRST_MESSAGE_TOO_SLOW);
    return;
  }
  if (exchange.gone) return;
  const { first, rest, ended } = head;
  let request: Buffer | undefined;
  if (first !== undefined) {
    try {
      request = json.requestFromJson(parseJsonValue(first));
    } catch (error: unknown) {
      if (!(error instanceof JsonMappingError)) throw error;
      // etcd's gateway answers this one with code UNKNOWN (its decode error is no gRPC status).
      const status = { code: 2, details: error.message };
      sendStatus(exchange, status);
      onRefused(status);
      return;
    }
  }
  const call = new JsonCall(exchange, json, spec.path, true, http);
  if (spec.shape === 'serverStream') {
    call.feed(request ?? json.requestFromJson(null));
    call.halfClose();
    exchange.body.resume();
    options.open(call);
    return;
  }
  if (request !== undefined) call.feed(request);
  if (ended) call.halfClose();
  else relayBody(exchange, json, call, rest);
  // Resumed before the flow opens (the body flows from the next turn on), so a pause the
  // flow makes while taking the first messages holds.
  exchange.body.resume();
  options.open(call);
}
