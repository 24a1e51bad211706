/**
 * The shapes of the gateway's answers, as etcd 3.4's gateway writes them: JSON bodies
 * with `Content-Type: application/json`; errors as `{"error","message","code"}` with
 * the HTTP status grpc-gateway maps the gRPC code to (PERMISSION_DENIED -> 403,
 * code 7); plain-text answers as Go's http.Error writes them.
 */
import type { OutgoingHttpHeaders } from 'node:http';
import type { Status } from '../proxy/status.js';
import type { Exchange } from './exchange.js';
import { goJson } from './json.js';

/** grpc-gateway v1's HTTPStatusFromCode, indexed by gRPC code; unknown codes are 500. */
const HTTP_STATUS_OF_CODE: readonly number[] = [
  200, // OK
  408, // CANCELLED
  500, // UNKNOWN
  400, // INVALID_ARGUMENT
  504, // DEADLINE_EXCEEDED
  404, // NOT_FOUND
  409, // ALREADY_EXISTS
  403, // PERMISSION_DENIED
  429, // RESOURCE_EXHAUSTED
  412, // FAILED_PRECONDITION
  409, // ABORTED
  400, // OUT_OF_RANGE
  501, // UNIMPLEMENTED
  500, // INTERNAL
  503, // UNAVAILABLE
  500, // DATA_LOSS
  401, // UNAUTHENTICATED
];

/** The HTTP status etcd's gateway answers a gRPC status code with. */
export function httpStatusOf(code: number): number {
  return HTTP_STATUS_OF_CODE[code] ?? 500;
}

/** etcd's gateway error body for a status (same text in `error` and `message`). */
export function errorBody(code: number, message: string): string {
  return goJson({ error: message, message, code });
}

/** A 200-or-other answer with a JSON body. */
export function sendJson(exchange: Exchange, status: number, body: string, close = false): void {
  exchange.send(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, body, close);
}

/** The gateway's answer for a failed call. */
export function sendStatus(exchange: Exchange, status: Status, close = false): void {
  sendJson(exchange, httpStatusOf(status.code), errorBody(status.code, status.details), close);
}

/** Go's http.Error: plain text, nosniff, the message and a newline. */
export function sendText(exchange: Exchange, status: number, body: string, extra: OutgoingHttpHeaders = {}, close = false): void {
  exchange.send(
    status,
    { 'content-type': 'text/plain; charset=utf-8', 'x-content-type-options': 'nosniff', ...extra, 'content-length': Buffer.byteLength(body) },
    body,
    close,
  );
}
