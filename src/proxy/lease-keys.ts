/**
 * Which keys are attached to a lease, asked of etcd with LeaseTimeToLive(keys=true)
 * under etcdgate's own identity. Used to authorize Put-with-lease, LeaseRevoke,
 * LeaseKeepAlive and LeaseTimeToLive(keys=true) the way current etcd does.
 */
import { encodeLeaseTimeToLiveRequest, leaseKeysOf } from '../etcd/responses.js';
import type { ProxyContext } from './context.js';
import { statusFromError } from './status.js';

const PATH = '/etcdserverpb.Lease/LeaseTimeToLive';

/** The keys attached to `leaseId` (decimal int64); [] when the lease does not exist. Rejects with a Status. */
export async function leaseKeys(context: ProxyContext, leaseId: string): Promise<Buffer[]> {
  const request = encodeLeaseTimeToLiveRequest(leaseId, true);
  try {
    return leaseKeysOf(await context.upstream.unary(PATH, request, { idempotent: true }));
  } catch (error: unknown) {
    throw statusFromError(error);
  }
}
