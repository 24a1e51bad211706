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
 * upstream and the client is told in-band, without waiting for anything else.
 */
import type * as grpc from '@grpc/grpc-js';
import type { KeySummary } from '../audit/types.js';
import { encodeWatchCancelRequest, encodeWatchCanceled, readWatchResponse, type WatchResponseInfo } from '../etcd/responses.js';
import type { MethodSpec } from '../etcd/types.js';
import type { Access, Decision, Permissions } from '../policy/types.js';
import { callEvent, currentCaller, startClock, type Caller, type OpenStream, type ProxyContext } from './context.js';
import { traceIdOf } from './metadata.js';
import { RATE_LIMITED_DECISION, TOO_MANY_WATCHERS_DECISION } from './limits.js';
import { bidiHandler, decodeStreamMessage } from './bidi.js';
import type { Undecryptable } from '../encryption/encryption.js';
import { endWithStatus, PERMISSION_DENIED_MESSAGE, RATE_LIMITED, TOO_MANY_WATCHERS_MESSAGE, undecryptableStatus, WATCHER_TOO_SLOW, type Status } from './status.js';

interface Watcher {
  readonly summary: KeySummary;
  readonly accesses: readonly Access[];
  readonly decision: Decision;
  readonly start: { date: Date; ns: bigint };
  watchId?: string;
  events: number;
  /** Holds one of the identity's watcher slots (AbuseLimits) until it ends. */
  slot: boolean;
}

type PendingCreate = { readonly kind: 'forwarded'; readonly watcher: Watcher } | { readonly kind: 'refused'; readonly response: Buffer };

/** Builds the grpc-js handler for Watch.Watch. */
export function watchHandler(context: ProxyContext, spec: MethodSpec): grpc.handleBidiStreamingCall<Buffer, Buffer> {
  return bidiHandler(context, spec, (caller, call, upstream) => new WatchStream(context, spec, caller, call, upstream));
}

class WatchStream implements OpenStream {
  private readonly pendingCreates: PendingCreate[] = [];
  private readonly watchers = new Map<string, Watcher>();
  /** Watchers etcdgate cancelled itself (policy reload): etcd's cancel confirmation is not relayed. */
  private readonly revoked = new Set<string>();
  private readonly start = startClock();
  private readonly traceId: string | undefined;
  private closed = false;
  /** Bytes handed to grpc-js for the client and not yet taken by HTTP/2 (the client is not reading). */
  private unflushed = 0;

  constructor(
    private readonly context: ProxyContext,
    private readonly spec: MethodSpec,
    /** Re-resolved on every create: the stream may outlive the policy it started under. */
    private caller: Caller,
    private readonly call: grpc.ServerDuplexStream<Buffer, Buffer>,
    private readonly upstream: grpc.ClientDuplexStream<Buffer, Buffer>,
  ) {
    this.traceId = traceIdOf(call.metadata);
    context.streams.add(this);
    context.metrics.streamOpened('watch');

    call.on('data', (message: Buffer) => this.fromClient(message));
    call.on('end', () => upstream.end());
    call.on('cancelled', () => {
      upstream.cancel();
      this.finish({ code: 1, details: 'cancelled by client' }, false);
    });
    upstream.on('metadata', (metadata: grpc.Metadata) => call.sendMetadata(metadata));
    upstream.on('data', (message: Buffer) => this.fromEtcd(message));
    upstream.on('error', () => {
      // The final status arrives in 'status'; this listener only keeps the error handled.
    });
    upstream.on('status', (status: grpc.StatusObject) => this.finish({ code: status.code, details: status.details, metadata: status.metadata }, true));
  }

  private fromClient(message: Buffer): void {
    this.context.metrics.bytes('in', message.length);
    const decoded = decodeStreamMessage(this.spec, message, this);
    if (decoded === undefined) return;
    if (decoded.accesses.length === 0) {
      // Cancel or progress request: nothing to authorize.
      this.toEtcd(message);
      return;
    }
    this.caller = currentCaller(this.context, this.caller);
    const fingerprint = this.caller.connection.identity.fingerprint;
    let decision = this.caller.permissions.check(decoded.accesses);
    // Limits are answered in-band like a denial, so the caller's other watchers carry on.
    let refusal = { code: 7, message: PERMISSION_DENIED_MESSAGE };
    if (decision.allowed && !this.context.limits.takeRequest(fingerprint)) {
      decision = RATE_LIMITED_DECISION;
      refusal = { code: RATE_LIMITED.code, message: RATE_LIMITED.details };
    } else if (decision.allowed && !this.context.limits.acquireWatcher(fingerprint)) {
      decision = TOO_MANY_WATCHERS_DECISION;
      refusal = { code: 8, message: TOO_MANY_WATCHERS_MESSAGE };
    }
    const watcher: Watcher = { summary: decoded.summary, accesses: decoded.accesses, decision, start: startClock(), events: 0, slot: decision.allowed };
    if (decision.allowed) {
      this.pendingCreates.push({ kind: 'forwarded', watcher });
      this.toEtcd(message);
      return;
    }
    if (refusal.code === 7) this.context.metrics.denied(decision.role ?? 'none');
    this.audit('watch.create', watcher, refusal);
    const response = encodeWatchCanceled('-1', true, refusal.message);
    if (this.pendingCreates.length === 0) this.toClient(response);
    else this.pendingCreates.push({ kind: 'refused', response });
  }

  private fromEtcd(message: Buffer): void {
    let info: WatchResponseInfo;
    try {
      info = readWatchResponse(message);
    } catch {
      this.toClient(message);
      return;
    }
    if (info.created) {
      this.flushRefusals();
      const head = this.pendingCreates.shift();
      if (head?.kind === 'forwarded') this.created(head.watcher, info);
      this.toClient(message);
      // A reload between the create request and etcd's answer missed this watcher.
      if (head?.kind === 'forwarded' && this.watchers.has(info.watchId)) {
        this.revokeIfDenied(info.watchId, head.watcher, this.context.policy.permissionsFor(this.caller.connection.identity, this.caller.connection.address));
      }
      this.flushRefusals();
      return;
    }
    const watcher = this.watchers.get(info.watchId);
    // >>> Encryption at rest (src/encryption): event values opened; a watcher whose event
    // holds a value that cannot be is cancelled in-band, and the value never relayed.
    let out = message;
    if (info.events > 0 && this.context.encryption !== undefined) {
      const opened = this.context.encryption.watchResponse(message);
      if (!opened.ok) return this.undecryptable(info.watchId, watcher, opened.failure);
      out = opened.message;
    }
    // <<< Encryption at rest
    if (info.canceled) {
      if (this.revoked.delete(info.watchId)) return;
      if (watcher !== undefined) this.watcherEnded(watcher, info);
    } else if (watcher !== undefined) {
      watcher.events += info.events;
    }
    this.toClient(out);
  }

  /** Ends watcher `watchId` whose events hold a value that cannot be decrypted (DATA_LOSS, in-band). */
  private undecryptable(watchId: string, watcher: Watcher | undefined, failure: Undecryptable): void {
    if (this.revoked.has(watchId)) return;
    const status = undecryptableStatus(failure);
    this.revoked.add(watchId);
    this.toEtcd(encodeWatchCancelRequest(watchId));
    this.toClient(encodeWatchCanceled(watchId, false, status.details));
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
    this.context.metrics.watchers(1);
  }

  private watcherEnded(watcher: Watcher, info: { cancelReason: string; compactRevision?: string }, code = 0): void {
    if (watcher.watchId !== undefined) this.watchers.delete(watcher.watchId);
    this.releaseSlot(watcher);
    this.context.metrics.watchers(-1);
    const reason = info.cancelReason !== '' ? info.cancelReason : info.compactRevision !== undefined && info.compactRevision !== '0' ? `compacted at ${info.compactRevision}` : 'cancelled';
    this.audit('watch.end', watcher, { code, message: reason, count: watcher.events });
  }

  private flushRefusals(): void {
    while (this.pendingCreates[0]?.kind === 'refused') {
      const refusal = this.pendingCreates.shift() as { response: Buffer };
      this.toClient(refusal.response);
    }
  }

  private releaseSlot(watcher: Watcher): void {
    if (!watcher.slot) return;
    watcher.slot = false;
    this.context.limits.releaseWatcher(this.caller.connection.identity.fingerprint);
  }

  private toClient(message: Buffer): void {
    if (this.closed) return;
    this.context.metrics.bytes('out', message.length);
    const size = message.length;
    this.unflushed += size;
    const more = this.call.write(message, () => {
      this.unflushed -= size;
    });
    // Backpressure pauses etcd's stream, but a client that never reads would hold it (and
    // what is already buffered) forever: past the bound its watchers are cancelled.
    if (this.unflushed > this.context.limits.maxWatcherBufferBytes) {
      this.tooSlow();
      return;
    }
    if (!more) {
      this.upstream.pause();
      this.call.once('drain', () => this.upstream.resume());
    }
  }

  private toEtcd(message: Buffer): void {
    if (!this.upstream.write(message)) {
      this.call.pause();
      this.upstream.once('drain', () => this.call.resume());
    }
  }

  /** Cancels, in-band, every watcher whose range the current policy no longer lets the caller read. */
  revalidate(): void {
    const permissions = this.context.policy.permissionsFor(this.caller.connection.identity, this.caller.connection.address);
    for (const [watchId, watcher] of [...this.watchers]) this.revokeIfDenied(watchId, watcher, permissions);
  }

  private revokeIfDenied(watchId: string, watcher: Watcher, permissions: Permissions): void {
    if (permissions.check(watcher.accesses).allowed) return;
    this.revoked.add(watchId);
    this.toEtcd(encodeWatchCancelRequest(watchId));
    this.toClient(encodeWatchCanceled(watchId, false, PERMISSION_DENIED_MESSAGE));
    this.watcherEnded(watcher, { cancelReason: 'permission revoked by policy reload' }, 7);
  }

  private tooSlow(): void {
    for (const watcher of [...this.watchers.values()]) this.watcherEnded(watcher, { cancelReason: WATCHER_TOO_SLOW.details }, WATCHER_TOO_SLOW.code);
    this.abort(WATCHER_TOO_SLOW);
  }

  abort(status: Status): void {
    this.finish(status, true);
    this.upstream.cancel();
  }

  private finish(status: Status, tellClient: boolean): void {
    if (this.closed) return;
    for (const watcher of [...this.watchers.values()]) this.watcherEnded(watcher, { cancelReason: 'stream closed' }, status.code);
    for (const pending of this.pendingCreates) if (pending.kind === 'forwarded') this.releaseSlot(pending.watcher);
    this.closed = true;
    this.context.streams.delete(this);
    this.context.metrics.streamClosed('watch');
    const seconds = Number(process.hrtime.bigint() - this.start.ns) / 1e9;
    this.context.metrics.requestFinished(this.spec.service, this.spec.method, 'allow', status.code, seconds);
    if (!tellClient) return;
    if (status.code === 0) this.call.end(status.metadata);
    else endWithStatus(this.call, status);
  }

  private audit(kind: 'watch.create' | 'watch.end', watcher: Watcher, result: { code: number; message: string; revision?: string; count?: number }): void {
    this.context.auditor.record(
      callEvent(this.spec, this.caller, kind, watcher.start, watcher.summary, watcher.decision, result, {
        ...(watcher.watchId === undefined ? {} : { watchId: watcher.watchId }),
        traceId: this.traceId,
      }),
    );
  }
}
