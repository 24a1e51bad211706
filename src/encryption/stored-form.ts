/**
 * The stored form of an encrypted value, what etcd holds in place of the plaintext:
 *
 *   etcdgate:enc:v1:<provider>:<key name>:<nonce><ciphertext and tag>
 *
 * The header is ASCII and says which provider and which of its keys sealed the value,
 * so a read picks the key from the header instead of trying every key, and a value
 * written before a rotation stays readable while its key is still listed. The etcd key
 * and this header are the AEAD's associated data (see providers.ts), so a stored value
 * copied to another key, or relabelled with another key name, does not decrypt.
 *
 * A value that does not start with the magic `etcdgate:enc:` is plaintext (written
 * before encryption was turned on, or directly to etcd). One that starts with it but has
 * no well-formed header is not plaintext: it is refused, never passed off as a value.
 */

/** What every stored value starts with; `v1` follows it today. */
export const STORED_MAGIC = Buffer.from('etcdgate:enc:', 'latin1');
/** The layout version this code writes and reads. */
export const STORED_VERSION = 'v1';

const COLON = 0x3a;
/** Longest provider and key name fields a header may have (config limits are shorter). */
const MAX_PROVIDER = 16;
const MAX_KEY_NAME = 64;

/** The header written before values sealed by `provider` with key `keyName`. */
export function storedHeader(provider: string, keyName: string): Buffer {
  return Buffer.from(`${STORED_MAGIC.toString('latin1')}${STORED_VERSION}:${provider}:${keyName}:`, 'latin1');
}

/** A stored value read apart: plaintext, a sealed value with its header, or an unusable header. */
export type StoredForm =
  | { readonly kind: 'plaintext' }
  | { readonly kind: 'malformed'; readonly why: string }
  | {
      readonly kind: 'sealed';
      readonly provider: string;
      readonly keyName: string;
      /** The header bytes (a view into the value), part of the associated data. */
      readonly header: Buffer;
      /** Nonce, ciphertext and tag (a view into the value). */
      readonly payload: Buffer;
    };

/** Reads the header of a stored value. Never throws; views, not copies. */
export function parseStoredForm(value: Buffer): StoredForm {
  if (value.length < STORED_MAGIC.length || value.compare(STORED_MAGIC, 0, STORED_MAGIC.length, 0, STORED_MAGIC.length) !== 0) {
    return { kind: 'plaintext' };
  }
  const versionEnd = value.indexOf(COLON, STORED_MAGIC.length);
  if (versionEnd < 0) return { kind: 'malformed', why: 'stored form without a version' };
  const version = value.toString('latin1', STORED_MAGIC.length, versionEnd);
  if (version !== STORED_VERSION) return { kind: 'malformed', why: `stored form version "${version.slice(0, 8)}" is not supported` };
  const providerEnd = value.indexOf(COLON, versionEnd + 1);
  if (providerEnd < 0 || providerEnd - versionEnd - 1 > MAX_PROVIDER || providerEnd === versionEnd + 1) {
    return { kind: 'malformed', why: 'stored form without a provider' };
  }
  const nameEnd = value.indexOf(COLON, providerEnd + 1);
  if (nameEnd < 0 || nameEnd - providerEnd - 1 > MAX_KEY_NAME || nameEnd === providerEnd + 1) {
    return { kind: 'malformed', why: 'stored form without a key name' };
  }
  return {
    kind: 'sealed',
    provider: value.toString('latin1', versionEnd + 1, providerEnd),
    keyName: value.toString('latin1', providerEnd + 1, nameEnd),
    header: value.subarray(0, nameEnd + 1),
    payload: value.subarray(nameEnd + 1),
  };
}
