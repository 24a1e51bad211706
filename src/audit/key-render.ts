/**
 * The one place where key bytes become text in an audit record. A key is shown as text
 * only when that text is exactly the key and cannot disturb whoever reads the log; any
 * other key is shown as base64, so the record stays faithful to the bytes without
 * letting a caller smuggle terminal escapes, fake line breaks or reordered text in.
 */
import { isUtf8 } from 'node:buffer';
import type { JsonWriter } from './json-writer.js';

/**
 * Whether a UTF-16 code unit makes a key unsafe to show as text: C0 and C1 controls, DEL,
 * zero-width characters, the line and paragraph separators, bidirectional embeddings,
 * overrides and isolates (which can make a log line read differently from its bytes),
 * BOM, and the replacement character (a sign of lossy decoding upstream). All of them
 * are in the BMP, so checking code units is exact.
 */
function isUnsafe(unit: number): boolean {
  return (
    unit < 0x20 ||
    (unit >= 0x7f && unit <= 0x9f) ||
    (unit >= 0x200b && unit <= 0x200f) ||
    (unit >= 0x2028 && unit <= 0x202e) ||
    (unit >= 0x2066 && unit <= 0x2069) ||
    unit === 0xfeff ||
    unit === 0xfffd
  );
}

function isPrintable(text: string): boolean {
  for (let i = 0; i < text.length; i += 1) {
    if (isUnsafe(text.charCodeAt(i))) return false;
  }
  return true;
}

/** How a key appears in a record: `{ text }` when printable, else `{ base64 }`. */
export type RenderedKey = { readonly text: string } | { readonly base64: string };

/** Renders key bytes for an audit record; the empty key renders as the empty text. */
export function renderKey(bytes: Buffer): RenderedKey {
  if (isUtf8(bytes)) {
    const text = bytes.toString('utf8');
    if (isPrintable(text)) return { text };
  }
  return { base64: bytes.toString('base64') };
}

/**
 * Whether every byte is printable US-ASCII (0x20-0x7e), the common case of etcd keys.
 * Such bytes are valid UTF-8 whose text has no unsafe unit, so renderKey would show them
 * as text; checking the bytes directly skips the UTF-8 validation and decoding.
 */
function isPrintableAscii(bytes: Buffer): boolean {
  for (let i = 0; i < bytes.length; i += 1) {
    const byte = bytes[i] as number;
    if (byte < 0x20 || byte > 0x7e) return false;
  }
  return true;
}

/**
 * Writes the member `"field":"text"` or `"field_base64":"..."` that putKey would add for
 * the same bytes, for records written directly; nothing for non-Buffer input. `field` is
 * written as given, so callers pass a constant field name. Printable text holds no
 * control, DEL, C1, separator or lone surrogate, so only `"` and `\` can need escaping.
 */
export function writeKeyMember(writer: JsonWriter, field: string, bytes: unknown): void {
  if (!Buffer.isBuffer(bytes)) return;
  if (isPrintableAscii(bytes)) {
    writer.key(field).asciiBytesString(bytes);
    return;
  }
  const rendered = renderKey(bytes);
  if ('text' in rendered) writer.key(field).json(JSON.stringify(rendered.text));
  // Base64 digits need no escaping.
  else writer.key(`${field}_base64`).raw('"').raw(rendered.base64).raw('"');
}

/**
 * Adds `field` (printable) or `field_base64` to `target` for the given bytes. Non-Buffer
 * input is ignored: the audit trail never serializes anything it was not meant to.
 */
export function putKey(target: Record<string, unknown>, field: string, bytes: unknown): void {
  if (!Buffer.isBuffer(bytes)) return;
  const rendered = renderKey(bytes);
  if ('text' in rendered) target[field] = rendered.text;
  else target[`${field}_base64`] = rendered.base64;
}
