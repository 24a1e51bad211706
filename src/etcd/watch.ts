/**
 * Decoder of the Watch service's client messages. A Watch stream carries many
 * WatchRequests; each is decoded on its own. Only a create request needs anything
 * (read on its range); cancel and progress requests pass with no check, and progress
 * requests in particular must reach etcd (kube-apiserver relies on them).
 */
import { decoded, Details, EMPTY, keyAccess, keySummary } from './decoded.js';
import { ALL_KEYS_FROM } from './keys.js';
import { DecodeError } from './types.js';
import type { DecodedRequest } from './types.js';
import { WireReader } from './wire.js';

/** What a WatchRequest asks for. */
export type WatchRequestKind = 'create' | 'cancel' | 'progress' | 'unknown';

const FILTERS = ['NOPUT', 'NODELETE'] as const;

const KINDS: Readonly<Record<number, WatchRequestKind>> = { 1: 'create', 2: 'cancel', 3: 'progress' };

/** The one `request_union` member of a WatchRequest: its field number (0: none) and body. */
function unionMember(message: Buffer): { readonly member: number; readonly body: Buffer } {
  let member = 0;
  let body = EMPTY;
  const r = new WireReader(message);
  while (r.next()) {
    if (r.field >= 1 && r.field <= 3) {
      // Implementations disagree on merging a repeated oneof member: refuse, don't guess.
      if (member !== 0) throw new DecodeError('watch: request sets more than one request kind');
      member = r.field;
      body = r.bytes();
    } else {
      r.skip();
    }
  }
  return { member, body };
}

/** Classifies a WatchRequest without deciding anything; malformed bytes are 'unknown'. */
export function watchRequestKind(message: Buffer): WatchRequestKind {
  try {
    return KINDS[unionMember(message).member] ?? 'unknown';
  } catch (err) {
    if (err instanceof DecodeError) return 'unknown';
    throw err;
  }
}

function createRequest(body: Buffer): DecodedRequest {
  let key = EMPTY;
  let rangeEnd = EMPTY;
  let startRevision = '0';
  let progressNotify = false;
  let filters: number[] = [];
  let prevKv = false;
  let watchId = '0';
  let fragment = false;
  const r = new WireReader(body);
  while (r.next()) {
    switch (r.field) {
      case 1: key = r.bytes(); break;
      case 2: rangeEnd = r.bytes(); break;
      case 3: startRevision = r.int64(); break;
      case 4: progressNotify = r.bool(); break;
      case 5: filters = filters.concat(r.int32s()); break;
      case 6: prevKv = r.bool(); break;
      case 7: watchId = r.int64(); break;
      case 8: fragment = r.bool(); break;
      default: r.skip();
    }
  }
  // etcd watches from "\x00" (the smallest key) when the key is empty.
  if (key.length === 0) key = Buffer.from(ALL_KEYS_FROM);
  const details = new Details()
    .int('start_revision', startRevision)
    .flag('prev_kv', prevKv)
    .flag('progress_notify', progressNotify)
    .flag('fragment', fragment)
    .int('watch_id', watchId);
  if (filters.length > 0) {
    details.always('filters', filters.map((f) => FILTERS[f] ?? String(f)).join(','));
  }
  return decoded([keyAccess('read', key, rangeEnd)], keySummary('watch', key, rangeEnd, details));
}

function cancelRequest(body: Buffer): DecodedRequest {
  let watchId = '0';
  const r = new WireReader(body);
  while (r.next()) {
    if (r.field === 1) watchId = r.int64();
    else r.skip();
  }
  // watch_id 0 is a real watcher id, so it is always recorded.
  return decoded([], keySummary('watch_cancel', undefined, undefined, new Details().always('watch_id', watchId)));
}

/**
 * Watch.Watch, one client message. Create: read on `[key, range_end)`. Cancel and
 * progress: nothing. An empty message (which etcd ignores) needs nothing either; a
 * non-empty one with no known request kind is refused, since a kind added by a later
 * etcd could watch keys unchecked.
 */
export function decodeWatchRequest(message: Buffer): DecodedRequest {
  const { member, body } = unionMember(message);
  switch (member) {
    case 1: return createRequest(body);
    case 2: return cancelRequest(body);
    case 3: {
      const r = new WireReader(body);
      while (r.next()) r.skip();
      return decoded([], { op: 'watch_progress' });
    }
    default:
      if (message.length > 0) throw new DecodeError('watch: request without a known request kind');
      return decoded([], { op: 'watch_unknown' });
  }
}
