/**
 * What the composition root needs to wire the client listener's network defences: the
 * compiled network checks of the server config, the rate-limited audit of refusals, the
 * audit and metric of a connection closed after a re-check. Kept here so src/app.ts
 * only calls it.
 */
import type { Auditor } from '../audit/types.js';
import type { LimitsConfig, ServerConfig } from '../config/types.js';
import { compileCidrList } from '../network/cidr.js';
import { RefusalLimiter } from '../network/refusal-limiter.js';
import type { Metrics } from '../observability/metrics-types.js';
import type { ClientListenerOptions, RefusedHandshake, RevokedConnection } from './client-listener.js';

/** The front-door checks of `server` (CIDRs were validated by the config loader). */
export function networkChecks(server: ServerConfig): NonNullable<ClientListenerOptions['network']> {
  const ignore = (): void => undefined;
  return {
    ...(server.allowedSources === undefined ? {} : { allowedSources: compileCidrList(server.allowedSources, ignore) }),
    ...(server.proxyProtocol === undefined
      ? {}
      : { proxyProtocol: { trustedFrom: compileCidrList(server.proxyProtocol.trustedFrom, ignore), headerTimeoutMs: server.proxyProtocol.headerTimeoutMs } }),
  };
}

/** Counts every refusal and audits it, rate-limited per source (src/network/refusal-limiter.ts). */
export function refusalAudit(
  limits: LimitsConfig,
  deps: { auditor: Auditor; metrics: Metrics; now?: () => number; clock?: () => Date },
): { onRefused: (refused: RefusedHandshake) => void; limiter: RefusalLimiter<RefusedHandshake> } {
  const clock = deps.clock ?? ((): Date => new Date());
  const limiter = new RefusalLimiter<RefusedHandshake>(
    { perMinute: limits.refusalRecordsPerMinute, burst: limits.refusalRecordsBurst, totalPerMinute: limits.refusalRecordsTotalPerMinute },
    {
      now: deps.now ?? ((): number => performance.now()),
      record: (refused) => deps.auditor.handshakeRefused({ start: clock(), ...refused }),
      summary: (address, count) =>
        deps.auditor.handshakeRefused({
          start: clock(),
          kind: 'refusals.suppressed',
          address,
          port: 0,
          reason: 'suppressed',
          error: `${count} refused connection${count === 1 ? '' : 's'} ${address === '' ? 'from other sources' : 'from this source'} not recorded (refusal record limit)`,
          suppressed: count,
        }),
      suppressed: () => deps.metrics.refusalRecordSuppressed(),
    },
  );
  limiter.start();
  return {
    limiter,
    onRefused: (refused) => {
      deps.metrics.handshakeRefused(refused.reason);
      limiter.offer(refused);
    },
  };
}

/** Audits and counts an open connection closed after a re-check of its certificate. */
export function revokedAudit(deps: { auditor: Auditor; metrics: Metrics }): (revoked: RevokedConnection) => void {
  return ({ connection, reason, error }) => {
    deps.metrics.connectionRevoked(reason);
    deps.auditor.handshakeRefused({
      start: new Date(),
      kind: 'connection.revoked',
      connectionId: connection.id, // audit: the connection.open record it refers to
      address: connection.address,
      port: connection.port,
      reason,
      error,
      identity: connection.identity,
    });
  };
}
