/**
 * The encrypting providers, each an authenticated cipher with a 32-byte key:
 *
 * - `aesgcm`: AES-256-GCM (node:crypto, OpenSSL), a random 96-bit nonce per value and a
 *   128-bit tag. The associated data is the stored header followed by the etcd key. With
 *   random nonces NIST SP 800-38D bounds one key to 2^32 encryptions: rotate well before
 *   (the metric etcdgate_encryption_values_encrypted_total counts per key).
 * - `secretbox`: XSalsa20-Poly1305 (NaCl's secretbox, @noble/ciphers), a random 192-bit
 *   nonce per value, so no practical bound on encryptions per key. Secretbox has no
 *   associated data, so the binding is sealed inside: the plaintext is prefixed with the
 *   SHA-256 of the header and the etcd key, and a value whose digest does not match the
 *   key it is read from is refused like a failed tag.
 *
 * Sealed layout after the header: aesgcm `nonce(12) ciphertext tag(16)`, secretbox
 * `nonce(24) tag(16) ciphertext` (NaCl's order). Keys are imported once, when the
 * keyring is built; a call allocates only the cipher's output and a small buffer for the
 * header and nonce.
 */
import { createCipheriv, createDecipheriv, createHash, createSecretKey, randomFillSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import { xsalsa20poly1305 } from '@noble/ciphers/salsa.js';

/** An encrypting provider's name, as written in stored headers. */
export type SealingProviderKind = 'aesgcm' | 'secretbox';

/** One key of one provider, ready to seal and open values. */
export interface SealingKey {
  readonly provider: SealingProviderKind;
  /**
   * Seals `value` for `etcdKey`: `header` followed by the sealed payload, as the parts
   * to be written one after another (so a caller that copies them into a larger message
   * allocates the sealed value once, there).
   */
  seal(header: Buffer, etcdKey: Buffer, value: Buffer): readonly Buffer[];
  /** Opens a payload sealed for `etcdKey` under `header`; undefined when it does not authenticate. */
  open(header: Buffer, etcdKey: Buffer, payload: Buffer): Buffer | undefined;
}

/**
 * Nonces drawn from the CSPRNG in batches: one randomFillSync of 4 KiB instead of one per
 * value (a call for 12 bytes costs several µs, about as much as the cipher setup). Every
 * nonce is fresh CSPRNG output handed out once; the view is copied into the sealed value
 * before the next nonce is taken, so a refill never changes a nonce in use.
 */
class NonceSource {
  readonly #pool = Buffer.allocUnsafe(4096);
  #offset = this.#pool.length;

  take(length: number): Buffer {
    if (this.#offset + length > this.#pool.length) {
      randomFillSync(this.#pool);
      this.#offset = 0;
    }
    const nonce = this.#pool.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return nonce;
  }
}

const nonces = new NonceSource();

const GCM_NONCE = 12;
const GCM_TAG = 16;
const BOX_NONCE = 24;
const BOX_TAG = 16;
const DIGEST = 32;

/** Builds the sealing key of `provider` from its 32 raw key bytes (copied; the caller may wipe them). */
export function sealingKey(provider: SealingProviderKind, raw: Buffer): SealingKey {
  return provider === 'aesgcm' ? aesGcmKey(createSecretKey(Buffer.from(raw))) : secretboxKey(new Uint8Array(raw));
}

function aad(header: Buffer, etcdKey: Buffer): Buffer {
  return Buffer.concat([header, etcdKey], header.length + etcdKey.length);
}

function aesGcmKey(key: KeyObject): SealingKey {
  return {
    provider: 'aesgcm',
    seal(header, etcdKey, value) {
      const nonce = nonces.take(GCM_NONCE);
      const cipher = createCipheriv('aes-256-gcm', key, nonce, { authTagLength: GCM_TAG });
      cipher.setAAD(aad(header, etcdKey));
      const body = cipher.update(value);
      const last = cipher.final();
      // The nonce is copied now (with the header, one small buffer): the pool refills.
      return [Buffer.concat([header, nonce]), body, last, cipher.getAuthTag()];
    },
    open(header, etcdKey, payload) {
      if (payload.length < GCM_NONCE + GCM_TAG) return undefined;
      const decipher = createDecipheriv('aes-256-gcm', key, payload.subarray(0, GCM_NONCE), { authTagLength: GCM_TAG });
      decipher.setAAD(aad(header, etcdKey));
      decipher.setAuthTag(payload.subarray(payload.length - GCM_TAG));
      const body = decipher.update(payload.subarray(GCM_NONCE, payload.length - GCM_TAG));
      try {
        const last = decipher.final();
        return last.length === 0 ? body : Buffer.concat([body, last]);
      } catch {
        // final() throws exactly when the tag does not authenticate.
        return undefined;
      }
    },
  };
}

function secretboxKey(key: Uint8Array): SealingKey {
  const binding = (header: Buffer, etcdKey: Buffer): Buffer => createHash('sha256').update(header).update(etcdKey).digest();
  return {
    provider: 'secretbox',
    seal(header, etcdKey, value) {
      const nonce = nonces.take(BOX_NONCE);
      const sealed = xsalsa20poly1305(key, nonce).encrypt(Buffer.concat([binding(header, etcdKey), value]));
      return [Buffer.concat([header, nonce]), Buffer.from(sealed.buffer, sealed.byteOffset, sealed.byteLength)];
    },
    open(header, etcdKey, payload) {
      if (payload.length < BOX_NONCE + BOX_TAG + DIGEST) return undefined;
      let opened: Uint8Array;
      try {
        opened = xsalsa20poly1305(key, payload.subarray(0, BOX_NONCE)).decrypt(payload.subarray(BOX_NONCE));
      } catch {
        return undefined;
      }
      const plain = Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength);
      if (!timingSafeEqual(plain.subarray(0, DIGEST), binding(header, etcdKey))) return undefined;
      return plain.subarray(DIGEST);
    },
  };
}
