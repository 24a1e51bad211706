/**
 * Decoders of etcd's election service (v3electionpb.Election). An election `name` keeps
 * its candidates under the prefix `name/`: campaigning writes a key there and reads the
 * prefix, Leader and Observe read it, and Proclaim and Resign act on the leader key the
 * caller names, guarded by a compare on it (hence read as well as write).
 * Values (Campaign and Proclaim) are skipped, never recorded.
 */
import { decoded, Details, EMPTY, keyAccess, keySummary } from './decoded.js';
import { prefixEnd, recipePrefix } from './keys.js';
import { decodeRecipeEntry } from './lock.js';
import type { DecodedRequest } from './types.js';
import { WireReader } from './wire.js';

/** The fields of a LeaderKey, merged over every occurrence of the message field. */
interface LeaderKey {
  name: Buffer;
  key: Buffer;
  rev: string;
  lease: string;
}

function mergeLeaderKey(into: LeaderKey, message: Buffer): void {
  const r = new WireReader(message);
  while (r.next()) {
    switch (r.field) {
      case 1: into.name = r.bytes(); break;
      case 2: into.key = r.bytes(); break;
      case 3: into.rev = r.int64(); break;
      case 4: into.lease = r.int64(); break;
      default: r.skip();
    }
  }
}

/** Reads the LeaderKey at field `field` of Proclaim/Resign; occurrences merge, as protobuf requires. */
function leaderOf(message: Buffer, field: number): LeaderKey {
  const leader: LeaderKey = { name: EMPTY, key: EMPTY, rev: '0', lease: '0' };
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === field) mergeLeaderKey(leader, r.bytes());
    else r.skip();
  }
  return leader;
}

function leaderDetails(leader: LeaderKey): Details {
  return new Details()
    .text('name', leader.name.toString('utf8'))
    .int('rev', leader.rev)
    .lease('lease', leader.lease);
}

/** Election.Campaign: read and write on the prefix `name/`; a lease adds a write check on its keys. */
export function decodeCampaignRequest(message: Buffer): DecodedRequest {
  return decodeRecipeEntry('campaign', message);
}

/** Election.Proclaim: read and write on the leader key; its lease gets a write check (the value is put with it). */
export function decodeProclaimRequest(message: Buffer): DecodedRequest {
  const leader = leaderOf(message, 1);
  return decoded(
    [keyAccess('read', leader.key, EMPTY), keyAccess('write', leader.key, EMPTY)],
    keySummary('proclaim', leader.key, EMPTY, leaderDetails(leader)),
    leader.lease !== '0' ? [{ leaseId: leader.lease, kind: 'write' }] : [],
  );
}

/**
 * Election.Resign: read and write on the leader key (a guarded delete), and, like
 * Proclaim, write on the keys of the lease it names: etcd opens a session on that lease.
 */
export function decodeResignRequest(message: Buffer): DecodedRequest {
  const leader = leaderOf(message, 1);
  return decoded(
    [keyAccess('read', leader.key, EMPTY), keyAccess('write', leader.key, EMPTY)],
    keySummary('resign', leader.key, EMPTY, leaderDetails(leader)),
    leader.lease !== '0' ? [{ leaseId: leader.lease, kind: 'write' }] : [],
  );
}

function prefixRead(op: string, message: Buffer): DecodedRequest {
  let name = EMPTY;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field === 1) name = r.bytes();
    else r.skip();
  }
  const key = recipePrefix(name);
  const end = prefixEnd(key);
  return decoded([keyAccess('read', key, end)], keySummary(op, key, end));
}

/** Election.Leader: read on the prefix `name/`. */
export function decodeLeaderRequest(message: Buffer): DecodedRequest {
  return prefixRead('leader', message);
}

/** Election.Observe: read on the prefix `name/`. */
export function decodeObserveRequest(message: Buffer): DecodedRequest {
  return prefixRead('observe', message);
}
