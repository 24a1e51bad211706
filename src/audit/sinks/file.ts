/**
 * The file sink's transport: appends to one file (created with mode 0600), one batch
 * per write, continuing a partial write where it stopped. reopen() makes the next write
 * go to a freshly opened file at the same path (log rotation); if that open fails, the
 * old file keeps receiving records and the reopen is tried again on the next write.
 *
 * A batch is appended with one synchronous write(2), as pino's own file destination does
 * by default: copying a few kilobytes into the page cache takes microseconds, while an
 * asynchronous fs.write spends tens of microseconds of CPU on the thread-pool hand-off
 * alone (34 against 4 µs per 3 KB append here; run
 * `node --import ./scripts/ts-loader.mjs bench/fs-write.ts`). The price: a disk that
 * stalls stalls etcdgate with it. Where the storage can stall (NFS), audit to syslog.
 * Opening and closing stay asynchronous, and all operations run one at a time in call
 * order, so no write overlaps a close.
 *
 * The file deleted or replaced under etcdgate: every `checkIntervalMs` (default 1 s) the
 * file at the path is compared with the open one (device and inode). Checking before
 * every write would catch it sooner, but a stat costs about as much as the append itself
 * (11 µs here), so it is paced instead, and nothing is lost for it:
 * - the path names another file (replaced), or none while the open file has no name left
 *   (deleted): the path is reopened at once (counted, logged, /readyz not ready until it
 *   worked). Records written since the last check that only the deleted file held are
 *   written again to the new one, read back from the deleted file (it stays readable while
 *   open; nothing written is kept in memory for this). At least once: up to one interval
 *   of records that were already in the deleted file, which nobody can read any more,
 *   appear once in the new;
 *   while the path cannot be opened, writes fail, so the queue keeps the records and
 *   retries rather than appending to a file that no longer exists;
 * - the path names no file but the open one still has a name (renamed: a rotation in
 *   progress): nothing is done; records go on to the renamed file until the signal.
 */
import { fstatSync, readSync, statSync, writeSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import type { AuditFileReopen, Metrics } from '../../observability/metrics-types.js';
import { PartialWriteError } from '../delivery-queue.js';
import type { AuditLogger, Transport } from '../delivery-queue.js';

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** How often the file at the path is compared with the open one, ms. */
export const FILE_CHECK_INTERVAL_MS = 1000;

/** Bytes copied per read when a deleted file's last records are written again. */
const REPLAY_PIECE_BYTES = 1024 * 1024;

/** What the file sink needs besides the path. */
export interface FileTransportOptions {
  readonly logger?: AuditLogger | undefined;
  readonly metrics?: Metrics | undefined;
  /** Default FILE_CHECK_INTERVAL_MS. */
  readonly checkIntervalMs?: number | undefined;
}

/** The file the path named when it was opened. */
interface FileIdentity {
  readonly dev: number;
  readonly ino: number;
}

/** A file found not to be the one at the path, awaiting its reopen. */
interface Lost {
  readonly reason: Exclude<AuditFileReopen, 'signal'>;
  /** The open file has no name left: what only it held is written again to the new one. */
  readonly unlinked: boolean;
}

/** Appends audit records to a file; see the module comment for rotation and failures. */
export class FileTransport implements Transport {
  readonly description: string;
  readonly #path: string;
  readonly #logger: AuditLogger | undefined;
  readonly #metrics: Metrics | undefined;
  #handle: FileHandle | null = null;
  #identity: FileIdentity | null = null;
  #reopenWanted = false;
  #reopenFailing = false;
  #closed = false;
  #lost: Lost | null = null;
  /**
   * The open file's size when a check last found it at the path. What lies beyond was
   * written since; should the file turn out deleted, that is read back from it (a deleted
   * file stays readable while open) and written to the new one. Nothing written is held
   * in memory for it: measured, holding a second of written batches cost 5-6% of CPU per
   * Range and Txn in young-generation collections.
   */
  #confirmedSize = 0;
  readonly #timer: NodeJS.Timeout;
  // Every file operation runs in this chain, one at a time, in call order.
  #chain: Promise<unknown> = Promise.resolve();

  constructor(filePath: string, options: FileTransportOptions = {}) {
    this.#path = filePath;
    this.#logger = options.logger;
    this.#metrics = options.metrics;
    this.description = `file ${filePath}`;
    this.#timer = setInterval(() => {
      this.#serial(async () => this.#check()).catch(() => undefined);
    }, options.checkIntervalMs ?? FILE_CHECK_INTERVAL_MS);
    this.#timer.unref();
  }

  /** False from finding the file at the path deleted or replaced until it is reopened there. */
  get intact(): boolean {
    return this.#lost === null;
  }

  /** Opens the file now, so a misconfigured path shows at startup; rejects if it cannot. */
  open(): Promise<void> {
    return this.#serial(async () => {
      await this.#ensureOpen();
    });
  }

  write(chunk: Buffer): Promise<void> {
    return this.#serial(() => this.#write(chunk));
  }

  reopen(): void {
    this.#reopenWanted = true;
    this.#metrics?.auditFileReopened('signal');
    // Reopen right away when idle, so the rotated file is released without waiting for traffic.
    this.#serial(async () => {
      if (this.#handle !== null && !this.#closed) await this.#recover();
    }).catch((err: unknown) => {
      this.#logger?.warn({ sink: this.description, error: errorText(err) }, 'audit file reopen failed; still writing to the old file');
      this.#reopenFailing = true;
    });
  }

  close(): Promise<void> {
    clearInterval(this.#timer);
    return this.#serial(async () => {
      this.#closed = true;
      const handle = this.#handle;
      this.#handle = null;
      await handle?.close();
    });
  }

  #serial<T>(operation: () => Promise<T>): Promise<T> {
    const next = this.#chain.then(operation, operation);
    this.#chain = next.catch(() => undefined);
    return next;
  }

  /** The handle to write to, opening (or reopening) the file when needed. */
  async #ensureOpen(): Promise<FileHandle> {
    if (this.#closed) throw new Error('audit file closed');
    if (this.#handle !== null && !this.#reopenWanted && this.#lost === null) return this.#handle;
    await mkdir(path.dirname(this.#path), { recursive: true, mode: 0o700 });
    // Mode applies when the file is created; an existing file keeps the mode its owner gave it.
    // Appends only (O_APPEND); readable so that a deleted file's last records can be copied.
    const next = await open(this.#path, 'a+', 0o600);
    const stats = await next.stat();
    const previous = this.#handle;
    // What only a deleted file held goes first into the new one, so order is kept.
    if (previous !== null && this.#lost?.unlinked === true) {
      try {
        this.#replay(previous, next);
      } catch (err: unknown) {
        await next.close().catch(() => undefined);
        throw err;
      }
    }
    this.#handle = next;
    this.#identity = { dev: stats.dev, ino: stats.ino };
    this.#confirmedSize = fstatSync(next.fd).size;
    this.#reopenWanted = false;
    if (this.#reopenFailing) {
      this.#reopenFailing = false;
      this.#logger?.info({ sink: this.description }, 'audit file reopened');
    }
    await previous?.close().catch(() => undefined);
    return next;
  }

  /** Copies what `from` received since the last check to the end of `to`. */
  #replay(from: FileHandle, to: FileHandle): void {
    const end = fstatSync(from.fd).size;
    const piece = Buffer.allocUnsafe(Math.min(REPLAY_PIECE_BYTES, Math.max(0, end - this.#confirmedSize)));
    for (let position = this.#confirmedSize; position < end; ) {
      const read = readSync(from.fd, piece, 0, Math.min(piece.length, end - position), position);
      if (read === 0) break;
      this.#append(to, piece.subarray(0, read));
      position += read;
    }
  }

  /**
   * Reopens the path after a signal or a lost file. Records that only a deleted file held
   * are written to the new one first (#ensureOpen), so order is kept.
   */
  async #recover(): Promise<FileHandle> {
    const lost = this.#lost;
    const handle = await this.#ensureOpen();
    if (lost !== null) {
      this.#lost = null;
      this.#logger?.info({ sink: this.description, reason: lost.reason }, 'audit file reopened at its path');
    }
    return handle;
  }

  /** Appends all of `chunk`; a failure leaves the descriptor to be replaced. */
  #append(handle: FileHandle, chunk: Buffer): void {
    let offset = 0;
    try {
      while (offset < chunk.length) offset += writeSync(handle.fd, chunk, offset, chunk.length - offset);
    } catch (err: unknown) {
      // The descriptor may be unusable now (EIO, EBADF): the next attempt opens the file afresh.
      this.#reopenWanted = true;
      throw new PartialWriteError(offset, err);
    }
  }

  async #write(chunk: Buffer): Promise<void> {
    let handle: FileHandle;
    try {
      // The usual case (open, no rotation or loss pending) needs no extra turn through #recover.
      handle = this.#handle !== null && !this.#reopenWanted && this.#lost === null && !this.#closed ? this.#handle : await this.#recover();
    } catch (err: unknown) {
      // A deleted file is not written to: the queue keeps the records and retries.
      if (this.#handle === null || this.#closed || this.#lost?.unlinked === true) throw err;
      // A failed rotation keeps the old file in use (it still has a name: nothing is lost).
      if (!this.#reopenFailing) {
        this.#reopenFailing = true;
        this.#logger?.warn({ sink: this.description, error: errorText(err) }, 'audit file reopen failed; still writing to the old file');
      }
      handle = this.#handle;
    }
    this.#append(handle, chunk);
  }

  /** Compares the file at the path with the open one; on a loss, reopens at once. */
  async #check(): Promise<void> {
    const handle = this.#handle;
    const identity = this.#identity;
    if (handle === null || identity === null || this.#closed || this.#reopenWanted) return;
    if (this.#lost !== null) {
      // Still not reopened: try again, so an idle sink recovers (and /readyz with it).
      await this.#recover().catch(() => undefined);
      return;
    }
    let atPath: FileIdentity | undefined;
    let linked: boolean;
    let openSize: number;
    try {
      const stats = statSync(this.#path, { throwIfNoEntry: false });
      atPath = stats === undefined ? undefined : { dev: stats.dev, ino: stats.ino };
      if (stats !== undefined && atPath !== undefined && atPath.dev === identity.dev && atPath.ino === identity.ino) {
        this.#confirmedSize = stats.size;
        return;
      }
      const open = fstatSync(handle.fd);
      linked = open.nlink > 0;
      openSize = open.size;
    } catch (err: unknown) {
      this.#logger?.warn({ sink: this.description, error: errorText(err) }, 'audit file could not be checked');
      return;
    }
    if (atPath === undefined && linked) {
      // Renamed away and nothing in its place yet: a rotation waiting for its signal.
      this.#confirmedSize = openSize;
      return;
    }
    const lost: Lost = { reason: atPath === undefined ? 'deleted' : 'replaced', unlinked: !linked };
    this.#lost = lost;
    this.#metrics?.auditFileReopened(lost.reason);
    this.#logger?.error({ sink: this.description, reason: lost.reason }, 'audit file is no longer the one at its path: reopening');
    try {
      await this.#recover();
    } catch (err: unknown) {
      this.#logger?.error({ sink: this.description, error: errorText(err) }, 'audit file cannot be reopened at its path; records are kept in memory and retried');
    }
  }
}
