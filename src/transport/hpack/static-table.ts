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

/** name -> value -> static index, for exact matches. */
const FIELD_INDEX = new Map<string, Map<string, number>>();
/** name -> the lowest static index carrying that name. */
const NAME_INDEX = new Map<string, number>();

for (const line of ENTRIES.split('\n')) {
  const space = line.indexOf(' ');
  const name = space < 0 ? line : line.slice(0, space);
  const value = space < 0 ? '' : line.slice(space + 1);
  (STATIC_NAMES as string[]).push(name);
  (STATIC_VALUES as string[]).push(value);
  const index = STATIC_NAMES.length;
  if (!NAME_INDEX.has(name)) NAME_INDEX.set(name, index);
  let byValue = FIELD_INDEX.get(name);
  if (byValue === undefined) FIELD_INDEX.set(name, (byValue = new Map()));
  byValue.set(value, index);
}
if (STATIC_NAMES.length !== STATIC_TABLE_LENGTH) throw new Error('HPACK static table: wrong entry count');

/** The static index whose name and value both match, or 0. */
export function staticFieldIndex(name: string, value: string): number {
  return FIELD_INDEX.get(name)?.get(value) ?? 0;
}

/** The lowest static index with this name, or 0. */
export function staticNameIndex(name: string): number {
  return NAME_INDEX.get(name) ?? 0;
}
