/**
 * A directory destination (local disk or a mounted network file system). Every file
 * is written under a temporary dot-name, fsynced, renamed into place, and the
 * directory fsynced, so a crash leaves either the whole file or only a dot-file that
 * `discard` and the next run's clean-up remove. Files are created mode 0600: a
 * snapshot holds every value etcd has, Secrets included.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, readdir, readFile, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { BackupDestinationConfig } from '../config/types.js';
import type { Destination, Listing } from './destination.js';
import { isSnapshotFileName, MANIFEST_SUFFIX, manifestText, parseManifest, type Manifest } from './manifest.js';

const FILE_MODE = 0o600;

/** The temporary name a file is written under before it is renamed to `name`. */
export function partialName(name: string): string {
  return `.${name}.partial`;
}

/** fsyncs a directory, so a rename in it survives a crash. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Writes `text` to `file` durably: temporary name, fsync, rename, directory fsync. */
async function writeDurably(file: string, text: string): Promise<void> {
  const temp = path.join(path.dirname(file), partialName(path.basename(file)));
  const handle = await open(temp, 'w', FILE_MODE);
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
  await rename(temp, file);
  await syncDirectory(path.dirname(file));
}

export class DirectoryDestination implements Destination {
  readonly kind = 'directory' as const;
  readonly name: string;
  readonly dir: string;

  constructor(config: Extract<BackupDestinationConfig, { kind: 'directory' }>) {
    this.name = config.name;
    this.dir = config.path;
  }

  canMove(staged: string): boolean {
    return path.dirname(staged) === this.dir;
  }

  async store(staged: string, manifest: Manifest, options: { readonly mayMove: boolean; readonly signal: AbortSignal }): Promise<void> {
    const final = path.join(this.dir, manifest.file);
    if (options.mayMove && this.canMove(staged)) {
      // Already fsynced by the caller: a rename is enough.
      await rename(staged, final);
    } else {
      const temp = path.join(this.dir, partialName(manifest.file));
      // `flush`: fsynced before it is closed, and pipeline resolves only after the close.
      await pipeline(createReadStream(staged), createWriteStream(temp, { flags: 'wx', mode: FILE_MODE, flush: true }), { signal: options.signal });
      await rename(temp, final);
    }
    await syncDirectory(this.dir);
    options.signal.throwIfAborted();
    await writeDurably(path.join(this.dir, `${manifest.file}${MANIFEST_SUFFIX}`), manifestText(manifest));
  }

  read(file: string, signal?: AbortSignal): AsyncIterable<Uint8Array> {
    return createReadStream(path.join(this.dir, file), signal === undefined ? {} : { signal });
  }

  async list(): Promise<Listing> {
    const manifests: Manifest[] = [];
    const problems: string[] = [];
    for (const entry of await readdir(this.dir)) {
      if (!entry.endsWith(MANIFEST_SUFFIX) || !isSnapshotFileName(entry.slice(0, -MANIFEST_SUFFIX.length))) continue;
      try {
        const manifest = parseManifest(await readFile(path.join(this.dir, entry), 'utf8'));
        if (`${manifest.file}${MANIFEST_SUFFIX}` !== entry) throw new Error('names another file');
        manifests.push(manifest);
      } catch (error: unknown) {
        problems.push(`${entry}: ${error instanceof Error ? error.message : 'unreadable'}`);
      }
    }
    manifests.sort((a, b) => (a.file < b.file ? -1 : 1));
    return { manifests, problems };
  }

  async remove(file: string): Promise<void> {
    if (!isSnapshotFileName(file)) throw new Error(`not a snapshot name: ${file}`);
    await rm(path.join(this.dir, `${file}${MANIFEST_SUFFIX}`), { force: true });
    await syncDirectory(this.dir);
    await rm(path.join(this.dir, file), { force: true });
  }

  async discard(file: string): Promise<void> {
    const names = [file, partialName(file), `${file}${MANIFEST_SUFFIX}`, partialName(`${file}${MANIFEST_SUFFIX}`)];
    await Promise.all(names.map((name) => rm(path.join(this.dir, name), { force: true }).catch(() => undefined)));
  }
}
