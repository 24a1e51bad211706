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
 */
import { writeSync } from 'node:fs';
import { mkdir, open } from 'node:fs/promises';
import type { FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { PartialWriteError } from '../delivery-queue.js';
import type { AuditLogger, Transport } from '../delivery-queue.js';

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Appends audit records to a file; see the module comment for rotation and failures. */
export class FileTransport implements Transport {
  readonly description: string;
  readonly #path: string;
  readonly #logger: AuditLogger | undefined;
  #handle: FileHandle | null = null;
  #reopenWanted = false;
  #reopenFailing = false;
  #closed = false;
  // Every file operation runs in this chain, one at a time, in call order.
  #chain: Promise<unknown> = Promise.resolve();

  constructor(filePath: string, logger?: AuditLogger) {
    this.#path = filePath;
    this.#logger = logger;
    this.description = `file ${filePath}`;
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
    // Reopen right away when idle, so the rotated file is released without waiting for traffic.
    this.#serial(async () => {
      if (this.#handle !== null && !this.#closed) await this.#ensureOpen();
    }).catch((err: unknown) => {
      this.#logger?.warn({ sink: this.description, error: errorText(err) }, 'audit file reopen failed; still writing to the old file');
      this.#reopenFailing = true;
    });
  }

  close(): Promise<void> {
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
    if (this.#handle !== null && !this.#reopenWanted) return this.#handle;
    await mkdir(path.dirname(this.#path), { recursive: true, mode: 0o700 });
    // Mode applies when the file is created; an existing file keeps the mode its owner gave it.
    const next = await open(this.#path, 'a', 0o600);
    const previous = this.#handle;
    this.#handle = next;
    this.#reopenWanted = false;
    if (this.#reopenFailing) {
      this.#reopenFailing = false;
      this.#logger?.info({ sink: this.description }, 'audit file reopened');
    }
    await previous?.close().catch(() => undefined);
    return next;
  }

  async #write(chunk: Buffer): Promise<void> {
    let handle: FileHandle;
    try {
      // The usual case (open, no rotation pending) needs no extra turn through #ensureOpen.
      handle = this.#handle !== null && !this.#reopenWanted && !this.#closed ? this.#handle : await this.#ensureOpen();
    } catch (err: unknown) {
      // A failed reopen keeps the old file in use (rotation must never lose records).
      if (this.#handle === null || this.#closed) throw err;
      if (!this.#reopenFailing) {
        this.#reopenFailing = true;
        this.#logger?.warn({ sink: this.description, error: errorText(err) }, 'audit file reopen failed; still writing to the old file');
      }
      handle = this.#handle;
    }
    let offset = 0;
    try {
      while (offset < chunk.length) offset += writeSync(handle.fd, chunk, offset, chunk.length - offset);
    } catch (err: unknown) {
      // The descriptor may be unusable now (EIO, EBADF): the next attempt opens the file afresh.
      this.#reopenWanted = true;
      throw new PartialWriteError(offset, err);
    }
  }
}
