/**
 * Decoders of the Lease service. Granting needs the `lease` capability; revoking and
 * keeping a lease alive need write on every key attached to it, which only etcd knows:
 * the decoder names the lease in a LeaseKeysCheck and the proxy resolves it upstream.
 */
import { capability, capabilityOnly, decoded, Details, keySummary } from './decoded.js';
import type { DecodedRequest } from './types.js';
import { WireReader } from './wire.js';

/** The int64 field 1 of a message (the lease ID of Revoke, KeepAlive and TimeToLive). */
function leaseIdField(message: Buffer): string {
  let id = '0';
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) id = r.int64();
    else r.skip();
  }
  return id;
}

/** Lease.LeaseGrant: the `lease` capability. */
export function decodeLeaseGrantRequest(message: Buffer): DecodedRequest {
  let ttl = '0';
  let id = '0';
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: ttl = r.int64(); break;
      case 2: id = r.int64(); break;
      default: r.skip();
    }
  }
  const details = new Details().always('ttl', ttl).lease('id', id);
  return decoded([capability('lease')], keySummary('lease_grant', undefined, undefined, details));
}

/** Lease.LeaseRevoke: write on every key attached to the lease (revoking deletes them). */
export function decodeLeaseRevokeRequest(message: Buffer): DecodedRequest {
  const id = leaseIdField(message);
  const details = new Details().lease('id', id, true);
  return decoded([], keySummary('lease_revoke', undefined, undefined, details), [{ leaseId: id, kind: 'write' }]);
}

/** Lease.LeaseKeepAlive, one client message: write on every key attached to the lease. */
export function decodeLeaseKeepAliveRequest(message: Buffer): DecodedRequest {
  const id = leaseIdField(message);
  const details = new Details().lease('id', id, true);
  return decoded([], keySummary('lease_keep_alive', undefined, undefined, details), [{ leaseId: id, kind: 'write' }]);
}

/** Lease.LeaseTimeToLive: the `lease` capability; with keys=true also read on the attached keys. */
export function decodeLeaseTimeToLiveRequest(message: Buffer): DecodedRequest {
  let id = '0';
  let keys = false;
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: id = r.int64(); break;
      case 2: keys = r.bool(); break;
      default: r.skip();
    }
  }
  const details = new Details().lease('id', id, true).flag('keys', keys);
  return decoded(
    [capability('lease')],
    keySummary('lease_time_to_live', undefined, undefined, details),
    keys ? [{ leaseId: id, kind: 'read' }] : [],
  );
}

/**
 * Lease.LeaseLeases: the `admin` capability. The spec also allows "read on every key of
 * every lease listed"; that would need a lookup per lease per call, so etcdgate takes the
 * stricter branch only.
 */
export const decodeLeaseLeasesRequest = capabilityOnly('admin', 'lease_leases');
