/**
 * What a backup destination does, whatever it is (a directory, S3-compatible storage):
 * store a staged snapshot and its manifest durably, read a stored file back (to
 * verify it), list the manifests it holds, and delete a backup. Implementations:
 * ./directory-destination.ts and ./s3-destination.ts; createDestination picks one.
 */
import type { BackupDestinationConfig } from '../config/types.js';
import { DirectoryDestination } from './directory-destination.js';
import type { Manifest } from './manifest.js';
import { S3Destination } from './s3-destination.js';

/** The manifests a destination holds, and what it could not read (file name and why; never contents). */
export interface Listing {
  readonly manifests: readonly Manifest[];
  readonly problems: readonly string[];
}

export interface Destination {
  /** The configured name (labels, audit, `backup list`). */
  readonly name: string;
  readonly kind: BackupDestinationConfig['kind'];
  /**
   * Stores the finished, fsynced file at `staged` as `manifest.file`, then the manifest;
   * resolves once both are durable. `mayMove`: the caller no longer needs `staged`, so
   * a destination on the same file system may rename it instead of copying. On failure
   * nothing of this backup is left behind (see discard).
   */
  store(staged: string, manifest: Manifest, options: { readonly mayMove: boolean; readonly signal: AbortSignal }): Promise<void>;
  /** The stored file's bytes, streamed. */
  read(file: string, signal?: AbortSignal): AsyncIterable<Uint8Array>;
  list(): Promise<Listing>;
  /** Deletes a backup: the manifest first (so it stops being listed), then the file. */
  remove(file: string): Promise<void>;
  /** Removes whatever a failed store may have left of `file` (temporary names included); never throws. */
  discard(file: string): Promise<void>;
  /** True when `staged` can be renamed into this destination (same directory). */
  canMove(staged: string): boolean;
}

/** Builds the destination a config entry describes. */
export function createDestination(config: BackupDestinationConfig): Destination {
  return config.kind === 'directory' ? new DirectoryDestination(config) : new S3Destination(config);
}
