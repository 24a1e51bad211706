/**
 * age encryption of backups (age-encryption.org/v1, through the `age-encryption`
 * package), as streams: a snapshot is encrypted chunk by chunk on its way to disk and
 * never held whole in memory. etcdgate holds only recipients (public keys), so the
 * host that writes backups cannot read them back; whoever restores holds the identity
 * (`age -d -i key.txt`, or `etcdgate backup verify --identity key.txt`).
 *
 * The library works on web ReadableStreams; the bridges below are pull-based
 * (highWaterMark 1), so a chunk is read from the source only when the consumer asks for
 * the next one, and backpressure reaches all the way to etcd.
 */
import { Decrypter, Encrypter } from 'age-encryption';

/** A web stream that pulls one chunk at a time from `source`. */
function pullStream(source: AsyncIterable<Uint8Array>): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        const next = await iterator.next();
        if (next.done === true) controller.close();
        else controller.enqueue(next.value);
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 1 },
  );
}

/** The chunks of a web stream; leaving the loop early cancels it. */
async function* chunksOf(stream: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const reader = stream.getReader();
  let finished = false;
  try {
    for (;;) {
      const next = await reader.read();
      if (next.done) {
        finished = true;
        return;
      }
      yield next.value;
    }
  } finally {
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}

/** `source` encrypted to every recipient (age1... public keys). */
export async function* encryptChunks(source: AsyncIterable<Uint8Array>, recipients: readonly string[]): AsyncGenerator<Uint8Array> {
  const encrypter = new Encrypter();
  for (const recipient of recipients) encrypter.addRecipient(recipient);
  yield* chunksOf(await encrypter.encrypt(pullStream(source)));
}

/**
 * `source` (an age file) decrypted with any of `identities` (AGE-SECRET-KEY-1...).
 * A wrong key, a damaged header or any altered chunk makes the iteration throw: age
 * authenticates every 64 KiB chunk, so no tampered plaintext is ever yielded unnoticed.
 */
export async function* decryptChunks(source: AsyncIterable<Uint8Array>, identities: readonly string[]): AsyncGenerator<Uint8Array> {
  const decrypter = new Decrypter();
  for (const identity of identities) decrypter.addIdentity(identity);
  yield* chunksOf(await decrypter.decrypt(pullStream(source)));
}

/** The identities (private keys) of an age key file's text: `AGE-SECRET-KEY-` lines, comments skipped. */
export function identitiesOf(keyFileText: string): string[] {
  return keyFileText
    .split(/\r?\n/u)
    .map((line) => line.trim())
    .filter((line) => line.startsWith('AGE-SECRET-KEY-'));
}
