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
import { DecodeError, type DecodedRequest, type MethodSpec } from '../etcd/types.js';
import type { Access, Decision } from '../policy/types.js';
import { callerOf, callEvent, startClock, type Caller, type OpenStream, type ProxyContext } from './context.js';
import { traceIdOf, upstreamMetadata } from './metadata.js';
import { endWithStatus } from './server-stream.js';
import { AUDIT_UNAVAILABLE, MALFORMED, NO_UPSTREAM, PERMISSION_DENIED_MESSAGE, type Status } from './status.js';

const identity = (buffer: Buffer): Buffer => buffer;

interface Watcher {
  readonly summary: KeySummary;
  readonly accesses: readonly Access[];
  readonly decision: Decision;
  readonly start: { date: Date; ns: bigint };
  watchId?: string;
  events: number;
}

type PendingCreate = { readonly kind: 'forwarded'; readonly watcher: Watcher } | { readonly kind: 'refused'; readonly response: Buffer };

/** Builds the grpc-js handler for Watch.Watch. */
export function watchHandler(context: ProxyContext, spec: MethodSpec): grpc.handleBidiStreamingCall<Buffer, Buffer> {
  return (call) => {
    const caller = callerOf(context, call);
    if ('code' in caller) return endWithStatus(call, caller);
    if (!context.auditor.accepting) return endWithStatus(call, AUDIT_UNAVAILABLE);
    const endpoint = context.pool.pick();
    if (endpoint === undefined) return endWithStatus(call, NO_UPSTREAM);
    new WatchStream(context, spec, caller, call, endpoint.client.makeBidiStreamRequest(spec.path, identity, identity, upstreamMetadata(call.metadata)));
  };
}

class WatchStream implements OpenStream {
  private readonly pendingCreates: PendingCreate[] = [];
  private readonly watchers = new Map<string, Watcher>();
  /** Watchers etcdgate cancelled itself (policy reload): etcd's cancel confirmation is not relayed. */
  private readonly revoked = new Set<string>();
  private readonly start = startClock();
  private readonly traceId: string | undefined;
  private closed = false;

  constructor(
    private readonly context: ProxyContext,
    private readonly spec: MethodSpec,
    private readonly caller: Caller,
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
    let decoded: DecodedRequest;
    try {
      decoded = this.spec.decode(message);
    } catch (error: unknown) {
      if (!(error instanceof DecodeError)) throw error;
      this.abort(MALFORMED);
      return;
    }
    if (decoded.accesses.length === 0) {
      // Cancel or progress request: nothing to authorize.
      this.toEtcd(message);
      return;
    }
    const decision = this.caller.permissions.check(decoded.accesses);
    const watcher: Watcher = { summary: decoded.summary, accesses: decoded.accesses, decision, start: startClock(), events: 0 };
    if (decision.allowed) {
      this.pendingCreates.push({ kind: 'forwarded', watcher });
      this.toEtcd(message);
      return;
    }
    this.context.metrics.denied(decision.role ?? 'none');
    this.audit('watch.create', watcher, { code: 7, message: PERMISSION_DENIED_MESSAGE });
    const response = encodeWatchCanceled('-1', true, PERMISSION_DENIED_MESSAGE);
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
      this.flushRefusals();
      return;
    }
    const watcher = this.watchers.get(info.watchId);
    if (info.canceled) {
      if (this.revoked.delete(info.watchId)) return;
      if (watcher !== undefined) this.watcherEnded(watcher, info);
    } else if (watcher !== undefined) {
      watcher.events += info.events;
    }
    this.toClient(message);
  }

  private created(watcher: Watcher, info: WatchResponseInfo): void {
    watcher.watchId = info.watchId;
    const result = { code: 0, message: info.cancelReason, ...(info.revision === undefined ? {} : { revision: info.revision }) };
    this.audit('watch.create', watcher, result);
    if (info.canceled) return;
    this.watchers.set(info.watchId, watcher);
    this.context.metrics.watchers(1);
  }

  private watcherEnded(watcher: Watcher, info: { cancelReason: string; compactRevision?: string }, code = 0): void {
    if (watcher.watchId !== undefined) this.watchers.delete(watcher.watchId);
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

  private toClient(message: Buffer): void {
    if (this.closed) return;
    this.context.metrics.bytes('out', message.length);
    if (!this.call.write(message)) {
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
    const permissions = this.context.policy.permissionsFor(this.caller.connection.identity);
    for (const [watchId, watcher] of this.watchers) {
      if (permissions.check(watcher.accesses).allowed) continue;
      this.revoked.add(watchId);
      this.toEtcd(encodeWatchCancelRequest(watchId));
      this.toClient(encodeWatchCanceled(watchId, false, PERMISSION_DENIED_MESSAGE));
      this.watcherEnded(watcher, { cancelReason: 'permission revoked by policy reload' }, 7);
    }
  }

  abort(status: Status): void {
    this.finish(status, true);
    this.upstream.cancel();
  }

  private finish(status: Status, tellClient: boolean): void {
    if (this.closed) return;
    for (const watcher of [...this.watchers.values()]) this.watcherEnded(watcher, { cancelReason: 'stream closed' }, status.code);
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
