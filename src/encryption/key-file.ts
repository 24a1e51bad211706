/**
 * Key files of the encryption providers: one 32-byte key each, written as base64 text
 * (what `head -c 32 /dev/urandom | base64` prints, and what Kubernetes'
 * EncryptionConfiguration takes inline). A key file must be a regular file that neither
 * the group nor others may access: whoever reads it can decrypt every value it protects.
 *
 * The same checks run when the config is validated (start, check-config) and whenever
 * keys are (re)loaded, so a key file broken after start is caught by the reload, which
 * then keeps the keys in force. Messages name the file, never its content.
 */
import fs from 'node:fs';

/** Bytes of every provider key (AES-256, XSalsa20). */
export const KEY_BYTES = 32;

/** Strict base64 (RFC 4648 alphabet with padding) of exactly 32 bytes: 43 characters and one '='. */
const BASE64_32 = /^[A-Za-z0-9+/]{43}=$/u;

/** A key file's content, or why it cannot be used. */
export type KeyFileResult = { readonly key: Buffer } | { readonly problem: string };

/** Reads and checks one key file. Never throws; the key is returned only when every check passes. */
export function readKeyFile(file: string): KeyFileResult {
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    return { problem: `key file does not exist: ${file}` };
  }
  if (!stat.isFile()) return { problem: `key file is not a regular file: ${file}` };
  if ((stat.mode & 0o077) !== 0) {
    const mode = (stat.mode & 0o777).toString(8).padStart(3, '0');
    return { problem: `key file is accessible by its group or by others (mode ${mode}; it must be 600 or 400): ${file}` };
  }
  let text: string;
  try {
    text = fs.readFileSync(file, 'latin1').trim();
  } catch {
    return { problem: `key file is not readable: ${file}` };
  }
  if (!BASE64_32.test(text)) {
    return { problem: `key file must hold exactly ${KEY_BYTES} bytes in base64 (44 characters, e.g. from "head -c 32 /dev/urandom | base64"): ${file}` };
  }
  return { key: Buffer.from(text, 'base64') };
}
