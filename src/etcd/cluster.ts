/**
 * Decoders of the Cluster service. Listing members is open to any authenticated caller
 * (the proxy answers it with its own advertised URLs); changing membership needs the
 * `members` capability.
 */
import { capability, checkWellFormed, decoded, Details, keySummary } from './decoded.js';
import type { DecodedRequest } from './types.js';
import { WireReader } from './wire.js';

/** Reads a member request: its ID (uint64), peer URLs and learner flag, at the field numbers given by `layout`. */
function memberRequest(message: Buffer, op: string, layout: { id?: number; urls?: number; learner?: number }): DecodedRequest {
  let id = '0';
  const urls: string[] = [];
  let learner = false;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === layout.id) id = r.uint64();
    else if (r.field === layout.urls) urls.push(r.string());
    else if (r.field === layout.learner) learner = r.bool();
    else r.skip();
  }
  const details = new Details().int('ID', id).flag('isLearner', learner).text('peerURLs', urls.join(','));
  return decoded([capability('members')], keySummary(op, undefined, undefined, details));
}

/** Cluster.MemberAdd: the `members` capability. */
export function decodeMemberAddRequest(message: Buffer): DecodedRequest {
  return memberRequest(message, 'member_add', { urls: 1, learner: 2 });
}

/** Cluster.MemberRemove: the `members` capability. */
export function decodeMemberRemoveRequest(message: Buffer): DecodedRequest {
  return memberRequest(message, 'member_remove', { id: 1 });
}

/** Cluster.MemberUpdate: the `members` capability. */
export function decodeMemberUpdateRequest(message: Buffer): DecodedRequest {
  return memberRequest(message, 'member_update', { id: 1, urls: 2 });
}

/** Cluster.MemberPromote: the `members` capability. */
export function decodeMemberPromoteRequest(message: Buffer): DecodedRequest {
  return memberRequest(message, 'member_promote', { id: 1 });
}

const AUTHENTICATED = Object.freeze([Object.freeze({ kind: 'authenticated' as const })]);
const MEMBER_LIST = Object.freeze({ op: 'member_list' });

/** Cluster.MemberList: any authenticated caller. */
export function decodeMemberListRequest(message: Buffer): DecodedRequest {
  checkWellFormed(message);
  return decoded(AUTHENTICATED, MEMBER_LIST);
}
