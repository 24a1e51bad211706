/**
 * The rules a decoded header list must follow (RFC 9113 8.2 and 8.3): lower-case names
 * of token characters, values without NUL, CR, LF or surrounding whitespace, no
 * connection-specific fields, `te` only as "trailers", and the pseudo-header fields
 * each kind of block may carry, once each and before every regular field. A list that
 * breaks them is malformed: the stream is reset with PROTOCOL_ERROR.
 */

export type FieldKind = 'request' | 'response' | 'trailers';

const CONNECTION_SPECIFIC: ReadonlySet<string> = new Set(['connection', 'proxy-connection', 'keep-alive', 'transfer-encoding', 'upgrade']);

/** tchar of RFC 9110 5.6.2, lower-case only: which bytes a field name may hold. */
const NAME_CHAR = new Uint8Array(128);
for (const c of "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz") NAME_CHAR[c.charCodeAt(0)] = 1;

function validName(name: string, start: number): boolean {
  if (name.length <= start) return false;
  for (let i = start; i < name.length; i += 1) {
    const c = name.charCodeAt(i);
    if (c >= 128 || NAME_CHAR[c] !== 1) return false;
  }
  return true;
}

function validValue(value: string): boolean {
  const length = value.length;
  if (length === 0) return true;
  const first = value.charCodeAt(0);
  const last = value.charCodeAt(length - 1);
  if (first === 0x20 || first === 0x09 || last === 0x20 || last === 0x09) return false;
  for (let i = 0; i < length; i += 1) {
    const c = value.charCodeAt(i);
    if (c === 0 || c === 0x0a || c === 0x0d) return false;
  }
  return true;
}

const REQUEST_PSEUDO: ReadonlySet<string> = new Set([':method', ':scheme', ':authority', ':path']);

/** Whether `fields` (flat name, value list) is a well-formed block of `kind`. */
export function checkFields(fields: readonly string[], kind: FieldKind): boolean {
  let regular = false;
  let method: string | undefined;
  let scheme = false;
  let path: string | undefined;
  let status = false;
  let seen = 0;
  for (let i = 0; i < fields.length; i += 2) {
    const name = fields[i] as string;
    const value = fields[i + 1] as string;
    if (name.charCodeAt(0) === 0x3a) {
      // Pseudo-header: only before regular fields, only the kind's own, once each.
      if (regular || kind === 'trailers') return false;
      if (kind === 'request') {
        if (!REQUEST_PSEUDO.has(name)) return false;
        const bit = name === ':method' ? 1 : name === ':scheme' ? 2 : name === ':path' ? 4 : 8;
        if ((seen & bit) !== 0) return false;
        seen |= bit;
        if (name === ':method') method = value;
        else if (name === ':scheme') scheme = value !== '';
        else if (name === ':path') path = value;
      } else {
        if (name !== ':status' || status) return false;
        if (!/^\d{3}$/u.test(value)) return false;
        status = true;
      }
      if (!validValue(value)) return false;
      continue;
    }
    regular = true;
    if (!validName(name, 0) || !validValue(value)) return false;
    if (CONNECTION_SPECIFIC.has(name)) return false;
    if (name === 'te' && value !== 'trailers') return false;
  }
  if (kind === 'request') {
    if (method === undefined) return false;
    if (method === 'CONNECT') return path === undefined && !scheme;
    return scheme && path !== undefined && path !== '';
  }
  if (kind === 'response') return status;
  return true;
}

/** The value of the first field named `name`, or undefined. */
export function fieldValue(fields: readonly string[], name: string): string | undefined {
  for (let i = 0; i < fields.length; i += 2) if (fields[i] === name) return fields[i + 1];
  return undefined;
}

/**
 * The content-length a request declares (RFC 9113 8.1.1): -1 when it has none, NaN when
 * the field is not one decimal number (several equal values count as one).
 */
export function declaredContentLength(fields: readonly string[]): number {
  let declared = -1;
  for (let i = 0; i < fields.length; i += 2) {
    if (fields[i] !== 'content-length') continue;
    const value = fields[i + 1] as string;
    if (!/^\d{1,15}$/u.test(value)) return Number.NaN;
    const length = Number(value);
    if (declared >= 0 && declared !== length) return Number.NaN;
    declared = length;
  }
  return declared;
}
