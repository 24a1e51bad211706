/**
 * Which keys are attached to a lease, asked of etcd with LeaseTimeToLive(keys=true)
 * under etcdgate's own identity. Used to authorize Put-with-lease, LeaseRevoke,
 * LeaseKeepAlive and LeaseTimeToLive(keys=true) the way current etcd does.
 */
import * as grpc from '@grpc/grpc-js';
import { encodeLeaseTimeToLiveRequest, leaseKeysOf } from '../etcd/responses.js';
import type { ProxyContext } from './context.js';
import { passThrough } from './bidi.js';
import { statusFromError } from './status.js';

const PATH = '/etcdserverpb.Lease/LeaseTimeToLive';

/** The keys attached to `leaseId` (decimal int64); [] when the lease does not exist. Rejects with a Status. */
export function leaseKeys(context: ProxyContext, leaseId: string): Promise<Buffer[]> {
  const endpoint = context.pool.pick();
  if (endpoint === undefined) return Promise.reject(statusFromError(undefined));
  const request = encodeLeaseTimeToLiveRequest(leaseId, true);
  return new Promise((resolve, reject) => {
    endpoint.client.makeUnaryRequest(
      PATH,
      passThrough,
      passThrough,
      request,
      new grpc.Metadata(),
      { deadline: Date.now() + context.lookupTimeoutMs },
      (error, response) => {
        if (error !== null || response === undefined) reject(statusFromError(error));
        else resolve(leaseKeysOf(response));
      },
    );
  });
}
