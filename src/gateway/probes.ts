/**
 * `GET /version` and `GET /health`, answered as etcd 3.4 answers them on its client
 * port, from etcd's state as etcdgate sees it (its own calls, under its upstream
 * identity, through context.upstream):
 *
 * - /version: `{"etcdserver":"3.4.23","etcdcluster":"3.4.0"}` (application/json).
 *   The server version is what Maintenance.Status reports for the endpoint answering;
 *   etcd 3.4's Status does not carry the cluster version, so `etcdcluster` is that
 *   version's major.minor.0 (what a cluster of one version reports).
 * - /health: `{"health":"true"}` (200, text/plain as Go sniffs it) when etcd has no
 *   alarm (but those named by `?exclude=NOSPACE`), has a leader, and serves a
 *   linearizable read within a second; otherwise `{"health":"false"}` and 503.
 *
 * Any verified client may ask (etcd asks for no permission either); each probe takes
 * a token of the caller's request budget (limits.requestsPerSecond), since it costs up
 * to three calls to etcd. Probes are not audited: no client call reaches etcd.
 */
import type { Gate } from '../proxy/gate.js';
import type { UpstreamCalls } from '../upstream/calls.js';
import type { Exchange } from './exchange.js';
import type { EtcdJson } from './json.js';

/** What the probes need: the caller's request budget, etcdgate's own calls to etcd, the JSON codecs. */
export interface ProbeDeps {
  readonly gate: Gate;
  readonly upstream: UpstreamCalls;
  readonly json: EtcdJson;
}
import { sendJson, sendStatus, sendText } from './answers.js';
import { RATE_LIMITED, NO_UPSTREAM } from '../proxy/status.js';

const STATUS = '/etcdserverpb.Maintenance/Status';
const ALARM = '/etcdserverpb.Maintenance/Alarm';
const RANGE = '/etcdserverpb.KV/Range';

/** etcd's QGET in /health has a one-second budget; each of etcdgate's calls gets the same. */
const PROBE_TIMEOUT_MS = 1000;

/** True when the caller may run a probe now (verified connection, request budget left); answers otherwise. */
function admitted(deps: ProbeDeps, exchange: Exchange): boolean {
  if (deps.gate.limits.takeRequest(exchange.client.connection.identity.fingerprint)) return true;
  sendStatus(exchange, RATE_LIMITED);
  return false;
}

/** Answers GET /version. */
export async function serveVersion(deps: ProbeDeps, exchange: Exchange): Promise<void> {
  if (!admitted(deps, exchange)) return;
  const { json } = deps;
  let version: string;
  try {
    const codec = json.method(STATUS);
    const status = codec.decodeResponse(await deps.upstream.unary(STATUS, codec.requestFromJson({}), { timeoutMs: PROBE_TIMEOUT_MS, idempotent: true }));
    version = typeof status['version'] === 'string' ? status['version'] : '';
  } catch {
    sendStatus(exchange, NO_UPSTREAM);
    return;
  }
  const [major, minor] = version.split('.');
  const cluster = major !== undefined && minor !== undefined ? `${major}.${minor}.0` : 'not_decided';
  sendJson(exchange, 200, JSON.stringify({ etcdserver: version, etcdcluster: cluster }));
}

/** etcd's verdict: alarms (less the excluded ones), a leader, a linearizable read. */
async function healthy(deps: ProbeDeps, exclude: ReadonlySet<string>): Promise<boolean> {
  const { json, upstream } = deps;
  const options = { timeoutMs: PROBE_TIMEOUT_MS, idempotent: true };
  try {
    const alarm = json.method(ALARM);
    const alarms = alarm.decodeResponse(await upstream.unary(ALARM, alarm.requestFromJson({}), options))['alarms'];
    if (Array.isArray(alarms) && alarms.some((member: unknown) => !exclude.has(alarmName(member)))) return false;
    const status = json.method(STATUS);
    const leader = status.decodeResponse(await upstream.unary(STATUS, status.requestFromJson({}), options))['leader'];
    if (leader === undefined || leader === '0') return false;
    const range = json.method(RANGE);
    await upstream.unary(RANGE, range.requestFromJson({ key: 'aGVhbHRo', count_only: true }), options);
    return true;
  } catch {
    return false;
  }
}

/** The alarm's name as etcd prints it ("NOSPACE"); an alarm without a type is NONE. */
function alarmName(member: unknown): string {
  if (typeof member !== 'object' || member === null) return 'NONE';
  const alarm: unknown = Reflect.get(member, 'alarm');
  return typeof alarm === 'string' ? alarm : 'NONE';
}

/** Answers GET /health. */
export async function serveHealth(deps: ProbeDeps, exchange: Exchange, query: URLSearchParams): Promise<void> {
  if (!admitted(deps, exchange)) return;
  const ok = await healthy(deps, new Set(query.getAll('exclude')));
  if (ok) exchange.send(200, { 'content-type': 'text/plain; charset=utf-8', 'content-length': 17 }, '{"health":"true"}');
  else sendText(exchange, 503, '{"health":"false"}\n');
}
