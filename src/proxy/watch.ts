/**
 * Watch: one bidirectional stream carrying many watchers. Every create request is
 * authorized on its own (read on its range); cancel and progress requests pass through
 * (kube-apiserver relies on progress requests). A refused create is answered in-band,
 * the way etcd does it (created, canceled, watch_id -1, cancel_reason "etcdserver:
 * permission denied"), and the stream stays open for the caller's other watchers.
 *
 * Ordering invariant: clients pair each `created` response with their oldest pending
 * create request. So a refusal is written only after etcd has answered every create
 * forwarded before it; `pendingCreates` holds, in request order, the creates awaiting
 * their answer and the refusals waiting their turn.
 *
 * After a policy reload, watchers whose range is no longer readable are cancelled
 * upstream and the client is told in-band, without waiting for anything else. A client
 * that stops reading pauses etcd's stream and etcdgate's reading of its requests (whose
 * refusals etcdgate answers itself); past limits.maxWatcherBufferBytes unread, its
 * watchers are cancelled (RESOURCE_EXHAUSTED). Requests etcd is slow to take pause the
 * client's stream until they go out.
 */
import type { KeySummary } from '../audit/types.js';
import type { Encryption, Undecryptable } from '../encryption/encryption.js';
import { encodeWatchCancelRequest, encodeWatchCanceled, readWatchResponse, type WatchResponseInfo } from '../etcd/responses.js';
import type { MethodSpec } from '../etcd/types.js';
import type { Access, Decision, Permissions } from '../policy/types.js';
import type { CallOutcome, ClientCallHandler, GrpcClientCall } from '../transport/grpc/client-call.js';
import { Code } from '../transport/grpc/status.js';
import type { CancelReason, RpcCall, RpcHandler } from './call.js';
import type { Caller, CallStart, OpenStream } from './gate.js';
import { traceIdOf } from './metadata.js';
import { MALFORMED, NO_UPSTREAM, PERMISSION_DENIED_MESSAGE, RATE_LIMITED, RATE_LIMITED_DECISION, TOO_MANY_WATCHERS_DECISION, TOO_MANY_WATCHERS_MESSAGE, WATCHER_TOO_SLOW, undecryptableStatus, type Status } from './status.js';
import { openUpstream, relayToClient, type StreamDeps } from './stream-flow.js';

interface Watcher {
  readonly summary: KeySummary;
  readonly accesses: readonly Access[];
  readonly decision: Decision;
  readonly start: CallStart;
  watchId?: string;
  events: number;
  /** Holds one of the identity's watcher slots (AbuseLimits) until it ends. */
  slot: boolean;
}

/** Creates awaiting etcd's answer (and refusals queued behind them) past which the client's stream is not read. */
const MAX_PENDING_CREATES = 1024;

type PendingCreate = { readonly kind: 'forwarded'; readonly watcher: Watcher } | { readonly kind: 'refused'; readonly response: Buffer };

/** Serves one Watch stream. */
export class WatchFlow implements RpcHandler, OpenStream {
  private readonly pendingCreates: PendingCreate[] = [];
  private readonly watchers = new Map<string, Watcher>();
  /** Watchers etcdgate cancelled itself (policy reload): etcd's cancel confirmation is not relayed. */
  private readonly revoked = new Set<string>();
  private readonly traceId: string | undefined;
  private readonly upstream: GrpcClientCall | undefined;
  private closed = false;
  /**
   * Why the client's requests are not being read: etcd's side of the stream is backed
   * up, or the client's. The second matters because some answers are etcdgate's own
   * (refusals, cancels): pausing etcd does not slow those, pausing the client does.
   */
  private etcdBackedUp = false;
  private clientBackedUp = false;

  constructor(
    private readonly deps: StreamDeps & { readonly maxWatcherBufferBytes: number; readonly encryption: Encryption | undefined },
    private readonly spec: MethodSpec,
    /** Re-resolved on every create: the stream may outlive the policy it started under. */
    private caller: Caller,
    private readonly call: RpcCall,
    private readonly started: CallStart,
  ) {
    this.traceId = traceIdOf(call.header('traceparent'));
    const fromEtcd: ClientCallHandler = {
      onHeaders: (_upstream, metadata) => call.sendHeaders(metadata),
      onMessage: (_upstream, message, framed) => this.fromEtcd(message, framed),
      onEnd: (_upstream, outcome) => this.finish(outcome, true),
      onDrain: () => {
        this.etcdBackedUp = false;
        this.updateReading();
      },
    };
    this.upstream = openUpstream(deps.pool, spec, call, fromEtcd);
    if (this.upstream === undefined) {
      this.closed = true;
      const sent = call.end(NO_UPSTREAM);
      deps.gate.finished(spec, { allowed: true, reason: 'stream opened' }, sent.code, started, call.http);
      return;
    }
    deps.gate.streams.add(this);
    deps.gate.metrics.streamOpened('watch');
    // Attached once etcd's stream exists: messages the call already holds go straight to it.
    call.attach(this, true);
  }

  // ------------------------------------------------------------ client side

  onMessage(_call: RpcCall, message: Buffer, framed: Buffer | undefined): void {
    if (this.closed) return;
    const { gate } = this.deps;
    gate.metrics.bytes('in', message.length);
    const decoded = gate.decode(this.spec, message);
    if (decoded === undefined) {
      this.abort(MALFORMED);
      return;
    }
    if (decoded.accesses.length === 0) {
      // Cancel or progress request: nothing to authorize.
      this.toEtcd(message, framed);
      return;
    }
    this.caller = gate.callerOf(this.caller.client);
    const fingerprint = this.caller.connection.identity.fingerprint;
    // Every create takes a request token before it is decided, as a unary call does at
    // admission: a denied create costs etcdgate an answer and an audit record too.
    // Limits are answered in-band like a denial, so the caller's other watchers carry on.
    let decision: Decision;
    let refusal: { code: number; message: string } = { code: Code.PERMISSION_DENIED, message: PERMISSION_DENIED_MESSAGE };
    if (!gate.limits.takeRequest(fingerprint)) {
      decision = RATE_LIMITED_DECISION;
      refusal = { code: RATE_LIMITED.code, message: RATE_LIMITED.details };
    } else {
      decision = this.caller.permissions.check(decoded.accesses);
      if (decision.allowed && !gate.limits.acquireWatcher(fingerprint)) {
        decision = TOO_MANY_WATCHERS_DECISION;
        refusal = { code: Code.RESOURCE_EXHAUSTED, message: TOO_MANY_WATCHERS_MESSAGE };
      }
    }
    const watcher: Watcher = { summary: decoded.summary, accesses: decoded.accesses, decision, start: gate.start(), events: 0, slot: decision.allowed };
    if (decision.allowed) {
      this.pendingCreates.push({ kind: 'forwarded', watcher });
      this.toEtcd(message, framed);
      this.updateReading();
      return;
    }
    if (refusal.code === Code.PERMISSION_DENIED) gate.countDenial(this.caller, this.spec, decision, decoded);
    this.audit('watch.create', watcher, refusal);
    const response = encodeWatchCanceled('-1', true, refusal.message);
    if (this.pendingCreates.length === 0) this.toClient(response, undefined);
    else {
      // Waits behind a create etcd has not answered yet: held here, so counted here.
      this.pendingCreates.push({ kind: 'refused', response });
      this.updateReading();
    }
  }

  onHalfClose(): void {
    this.upstream?.end();
  }

  onCancel(_call: RpcCall, _reason: CancelReason, status: Status): void {
    this.upstream?.cancel();
    this.finish(status, false);
  }

  onDrain(): void {
    this.clientBackedUp = false;
    this.upstream?.resume();
    this.updateReading();
  }

  private toEtcd(message: Buffer, framed: Buffer | undefined): void {
    const upstream = this.upstream;
    if (upstream === undefined) return;
    const more = framed === undefined ? upstream.sendMessage(message) : upstream.sendFramed(framed);
    if (!more) {
      this.etcdBackedUp = true;
      this.updateReading();
    }
  }

  /** Reads the client's requests only while neither side is backed up and few creates await etcd's answer. */
  private updateReading(): void {
    if (this.etcdBackedUp || this.clientBackedUp || this.pendingCreates.length > MAX_PENDING_CREATES) this.call.pause();
    else this.call.resume();
  }

  // ------------------------------------------------------------ etcd side

  private fromEtcd(message: Buffer, framed: Buffer | undefined): void {
    if (this.closed) return;
    let info: WatchResponseInfo;
    try {
      info = readWatchResponse(message);
    } catch {
      this.toClient(message, framed);
      return;
    }
    if (info.created) {
      this.flushRefusals();
      const head = this.pendingCreates.shift();
      if (head?.kind === 'forwarded') this.created(head.watcher, info);
      this.toClient(message, framed);
      // A reload between the create request and etcd's answer missed this watcher.
      if (head?.kind === 'forwarded' && this.watchers.has(info.watchId)) {
        this.revokeIfDenied(info.watchId, head.watcher, this.deps.gate.callerOf(this.caller.client).permissions);
      }
      this.flushRefusals();
      this.updateReading();
      return;
    }
    const watcher = this.watchers.get(info.watchId);
    // Encryption at rest: event values opened; a watcher whose event holds a value that
    // cannot be is cancelled in-band, and the value never relayed.
    let out = message;
    let outFramed = framed;
    const encryption = this.deps.encryption;
    if (info.events > 0 && encryption !== undefined) {
      const opened = encryption.watchResponse(message);
      if (!opened.ok) {
        this.undecryptable(info.watchId, watcher, opened.failure);
        return;
      }
      if (opened.message !== message) {
        out = opened.message;
        outFramed = undefined;
      }
    }
    if (info.canceled) {
      if (this.revoked.delete(info.watchId)) return;
      if (watcher !== undefined) this.watcherEnded(watcher, info);
    } else if (watcher !== undefined) {
      watcher.events += info.events;
    }
    this.toClient(out, outFramed);
  }

  /** Ends watcher `watchId` whose events hold a value that cannot be decrypted (DATA_LOSS, in-band). */
  private undecryptable(watchId: string, watcher: Watcher | undefined, failure: Undecryptable): void {
    if (this.revoked.has(watchId)) return;
    const status = undecryptableStatus(failure);
    this.revoked.add(watchId);
    this.toEtcd(encodeWatchCancelRequest(watchId), undefined);
    this.toClient(encodeWatchCanceled(watchId, false, status.details), undefined);
    if (watcher !== undefined) this.watcherEnded(watcher, { cancelReason: status.details }, status.code);
  }

  private created(watcher: Watcher, info: WatchResponseInfo): void {
    watcher.watchId = info.watchId;
    const result = { code: 0, message: info.cancelReason, ...(info.revision === undefined ? {} : { revision: info.revision }) };
    this.audit('watch.create', watcher, result);
    if (info.canceled) {
      this.releaseSlot(watcher);
      return;
    }
    this.watchers.set(info.watchId, watcher);
    this.deps.gate.metrics.watchers(1);
  }

  private watcherEnded(watcher: Watcher, info: { cancelReason: string; compactRevision?: string }, code = 0): void {
    if (watcher.watchId !== undefined) this.watchers.delete(watcher.watchId);
    this.releaseSlot(watcher);
    this.deps.gate.metrics.watchers(-1);
    const reason = info.cancelReason !== '' ? info.cancelReason : info.compactRevision !== undefined && info.compactRevision !== '0' ? `compacted at ${info.compactRevision}` : 'cancelled';
    this.audit('watch.end', watcher, { code, message: reason, count: watcher.events });
  }

  private flushRefusals(): void {
    while (this.pendingCreates[0]?.kind === 'refused') {
      const refusal = this.pendingCreates.shift() as { response: Buffer };
      this.toClient(refusal.response, undefined);
    }
  }

  private releaseSlot(watcher: Watcher): void {
    if (!watcher.slot) return;
    watcher.slot = false;
    this.deps.gate.limits.releaseWatcher(this.caller.connection.identity.fingerprint);
  }

  private toClient(message: Buffer, framed: Buffer | undefined): void {
    if (this.closed) return;
    this.deps.gate.metrics.bytes('out', message.length);
    const more = relayToClient(this.call, message, framed);
    // Backpressure pauses etcd's stream, but a client that never reads would hold what is
    // already queued forever: past the bound its watchers are cancelled.
    if (this.call.queuedBytes > this.deps.maxWatcherBufferBytes) {
      this.tooSlow();
      return;
    }
    if (!more) {
      this.upstream?.pause();
      this.clientBackedUp = true;
      this.updateReading();
    }
  }

  /** Cancels, in-band, every watcher whose range the current policy no longer lets the caller read. */
  revalidate(): void {
    const permissions = this.deps.gate.callerOf(this.caller.client).permissions;
    for (const [watchId, watcher] of [...this.watchers]) this.revokeIfDenied(watchId, watcher, permissions);
  }

  private revokeIfDenied(watchId: string, watcher: Watcher, permissions: Permissions): void {
    if (permissions.check(watcher.accesses).allowed) return;
    this.revoked.add(watchId);
    this.toEtcd(encodeWatchCancelRequest(watchId), undefined);
    this.toClient(encodeWatchCanceled(watchId, false, PERMISSION_DENIED_MESSAGE), undefined);
    this.watcherEnded(watcher, { cancelReason: 'permission revoked by policy reload' }, Code.PERMISSION_DENIED);
  }

  private tooSlow(): void {
    for (const watcher of [...this.watchers.values()]) this.watcherEnded(watcher, { cancelReason: WATCHER_TOO_SLOW.details }, WATCHER_TOO_SLOW.code);
    this.abort(WATCHER_TOO_SLOW);
  }

  abort(status: Status): void {
    this.finish(status, true);
    this.upstream?.cancel();
  }

  private finish(status: Status | CallOutcome, tellClient: boolean): void {
    if (this.closed) return;
    for (const watcher of [...this.watchers.values()]) this.watcherEnded(watcher, { cancelReason: 'stream closed' }, status.code);
    for (const pending of this.pendingCreates) if (pending.kind === 'forwarded') this.releaseSlot(pending.watcher);
    this.closed = true;
    const { gate } = this.deps;
    gate.streams.delete(this);
    gate.metrics.streamClosed('watch');
    const sent = tellClient ? this.call.end({ code: status.code, details: status.details, metadata: status.metadata }) : status;
    gate.finished(this.spec, { allowed: true, reason: 'stream opened' }, sent.code, this.started, this.call.http);
  }

  private audit(kind: 'watch.create' | 'watch.end', watcher: Watcher, result: { code: number; message: string; revision?: string; count?: number }): void {
    this.deps.gate.audit(this.spec, this.caller, kind, watcher.start, watcher.summary, watcher.decision, result, {
      ...(watcher.watchId === undefined ? {} : { watchId: watcher.watchId }),
      traceId: this.traceId,
      http: this.call.http,
    });
  }
}
