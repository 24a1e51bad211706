/**
 * The HPACK static table (RFC 7541 Appendix A) and the lookups the encoder needs over it,
 * built once at import. Index 1 is the first entry; index 0 is never valid.
 */

/** RFC 7541 4.1: the per-entry overhead counted in table sizes (and RFC 9113 6.5.2 header list sizes). */
export const ENTRY_OVERHEAD = 32;

/** Number of static entries; dynamic table indexes start right after (62 is the newest dynamic entry). */
export const STATIC_TABLE_LENGTH = 61;

/** Static entry names, position i holds index i + 1. */
export const STATIC_NAMES: readonly string[] = [];
/** Static entry values, position i holds index i + 1 ('' where the RFC lists none). */
export const STATIC_VALUES: readonly string[] = [];

// One line per entry, `name value` split at the first space (values may contain spaces).
const ENTRIES = `:authority
:method GET
:method POST
:path /
:path /index.html
:scheme http
:scheme https
:status 200
:status 204
:status 206
:status 304
:status 400
:status 404
:status 500
accept-charset
accept-encoding gzip, deflate
accept-language
accept-ranges
accept
access-control-allow-origin
age
allow
authorization
cache-control
content-disposition
content-encoding
content-language
content-length
content-location
content-range
content-type
cookie
date
etag
expect
expires
from
host
if-match
if-modified-since
if-none-match
if-range
if-unmodified-since
last-modified
link
location
max-forwards
proxy-authenticate
proxy-authorization
range
referer
refresh
retry-after
server
set-cookie
strict-transport-security
transfer-encoding
user-agent
vary
via
www-authenticate`;

/** What the static table knows of one name. */
export interface StaticName {
  /** The lowest static index with this name. */
  readonly index: number;
  /** value -> static index, for exact matches. */
  readonly values: ReadonlyMap<string, number>;
}

/** Every static name, for the encoder's lookups. */
export const STATIC_BY_NAME: ReadonlyMap<string, StaticName> = new Map();

for (const line of ENTRIES.split('\n')) {
  const space = line.indexOf(' ');
  const name = space < 0 ? line : line.slice(0, space);
  const value = space < 0 ? '' : line.slice(space + 1);
  (STATIC_NAMES as string[]).push(name);
  (STATIC_VALUES as string[]).push(value);
  const index = STATIC_NAMES.length;
  let known = STATIC_BY_NAME.get(name);
  if (known === undefined) {
    known = { index, values: new Map() };
    (STATIC_BY_NAME as Map<string, StaticName>).set(name, known);
  }
  (known.values as Map<string, number>).set(value, index);
}
if (STATIC_NAMES.length !== STATIC_TABLE_LENGTH) throw new Error('HPACK static table: wrong entry count');
