/**
 * An S3-compatible object storage destination (AWS S3, Ceph RGW, OpenStack Swift's
 * s3api, MinIO...). The snapshot goes up as a multipart upload read from the staged
 * file (`@aws-sdk/lib-storage`, one part in flight: memory stays near one part size),
 * then the manifest as one small object. An object appears only when its upload
 * completes, so no reader ever sees half a snapshot; a failed multipart upload is
 * aborted by the library, and `discard` deletes whatever completed.
 *
 * Credentials come from the AWS SDK's default chain (AWS_ACCESS_KEY_ID /
 * AWS_SECRET_ACCESS_KEY, AWS_PROFILE and ~/.aws files, web identity, instance roles);
 * etcdgate's config never holds them. For non-AWS endpoints the SDK's optional
 * request checksums are off ("when required"), since many such services reject them.
 *
 * The SDK is loaded on first use, not at import: it costs about a second of start-up
 * and ~27 MB of memory, which configs without S3 (and every other CLI command) skip.
 */
import { createReadStream } from 'node:fs';
import type * as ClientS3 from '@aws-sdk/client-s3';
import type * as LibStorage from '@aws-sdk/lib-storage';

/** The SDK modules (loaded lazily) and the client built from them. */
interface Sdk {
  readonly client: ClientS3.S3Client;
  readonly s3: typeof ClientS3;
  readonly storage: typeof LibStorage;
}
import type { BackupDestinationConfig } from '../config/types.js';
import type { Destination, Listing } from './destination.js';
import { isSnapshotFileName, MANIFEST_SUFFIX, manifestText, parseManifest, type Manifest } from './manifest.js';

type S3Config = Extract<BackupDestinationConfig, { kind: 's3' }>;

/** The body of a GetObject answer as bytes; the SDK types it loosely. */
function isByteStream(value: unknown): value is AsyncIterable<Uint8Array> {
  return typeof value === 'object' && value !== null && Symbol.asyncIterator in value;
}

async function bodyText(body: unknown): Promise<string> {
  if (!isByteStream(body)) throw new Error('object has no body');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    // A manifest is a few hundred bytes; anything huge is not one.
    if (size > 1024 * 1024) throw new Error('manifest object larger than 1 MiB');
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

export class S3Destination implements Destination {
  readonly kind = 's3' as const;
  readonly name: string;
  readonly #config: S3Config;
  #sdk: Promise<Sdk> | undefined;

  constructor(config: S3Config) {
    this.name = config.name;
    this.#config = config;
  }

  /** The SDK modules and the client, loaded and built once. */
  #load(): Promise<Sdk> {
    this.#sdk ??= (async () => {
      const [s3, storage] = await Promise.all([import('@aws-sdk/client-s3'), import('@aws-sdk/lib-storage')]);
      const config = this.#config;
      const client = new s3.S3Client({
        region: config.region,
        forcePathStyle: config.forcePathStyle,
        ...(config.endpoint === undefined ? {} : { endpoint: config.endpoint, requestChecksumCalculation: 'WHEN_REQUIRED', responseChecksumValidation: 'WHEN_REQUIRED' }),
      });
      return { client, s3, storage };
    })();
    return this.#sdk;
  }

  #key(file: string): string {
    return `${this.#config.prefix}${file}`;
  }

  canMove(): boolean {
    return false;
  }

  async store(staged: string, manifest: Manifest, options: { readonly mayMove: boolean; readonly signal: AbortSignal }): Promise<void> {
    const { client, s3, storage } = await this.#load();
    const upload = new storage.Upload({
      client,
      params: { Bucket: this.#config.bucket, Key: this.#key(manifest.file), Body: createReadStream(staged), ContentType: 'application/octet-stream' },
      partSize: this.#config.partSizeBytes,
      queueSize: 1,
      leavePartsOnError: false,
    });
    const abort = (): void => void upload.abort();
    options.signal.addEventListener('abort', abort, { once: true });
    try {
      await upload.done();
    } finally {
      options.signal.removeEventListener('abort', abort);
    }
    options.signal.throwIfAborted();
    await client.send(
      new s3.PutObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(`${manifest.file}${MANIFEST_SUFFIX}`), Body: manifestText(manifest), ContentType: 'application/json' }),
      { abortSignal: options.signal },
    );
  }

  async *read(file: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    const { client, s3 } = await this.#load();
    const answer = await client.send(new s3.GetObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(file) }), signal === undefined ? {} : { abortSignal: signal });
    if (!isByteStream(answer.Body)) throw new Error(`${file}: object has no body`);
    yield* answer.Body;
  }

  async list(): Promise<Listing> {
    const { client, s3 } = await this.#load();
    const manifests: Manifest[] = [];
    const problems: string[] = [];
    let token: string | undefined;
    do {
      const page = await client.send(
        new s3.ListObjectsV2Command({ Bucket: this.#config.bucket, Prefix: this.#config.prefix, ...(token === undefined ? {} : { ContinuationToken: token }) }),
      );
      for (const object of page.Contents ?? []) {
        const name = (object.Key ?? '').slice(this.#config.prefix.length);
        if (!name.endsWith(MANIFEST_SUFFIX) || !isSnapshotFileName(name.slice(0, -MANIFEST_SUFFIX.length))) continue;
        try {
          const answer = await client.send(new s3.GetObjectCommand({ Bucket: this.#config.bucket, Key: object.Key }));
          const manifest = parseManifest(await bodyText(answer.Body));
          if (`${manifest.file}${MANIFEST_SUFFIX}` !== name) throw new Error('names another file');
          manifests.push(manifest);
        } catch (error: unknown) {
          problems.push(`${name}: ${error instanceof Error ? error.message : 'unreadable'}`);
        }
      }
      token = page.IsTruncated === true ? page.NextContinuationToken : undefined;
    } while (token !== undefined);
    manifests.sort((a, b) => (a.file < b.file ? -1 : 1));
    return { manifests, problems };
  }

  async remove(file: string): Promise<void> {
    if (!isSnapshotFileName(file)) throw new Error(`not a snapshot name: ${file}`);
    const { client, s3 } = await this.#load();
    await client.send(new s3.DeleteObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(`${file}${MANIFEST_SUFFIX}`) }));
    await client.send(new s3.DeleteObjectCommand({ Bucket: this.#config.bucket, Key: this.#key(file) }));
  }

  async discard(file: string): Promise<void> {
    await this.remove(file).catch(() => undefined);
  }
}
