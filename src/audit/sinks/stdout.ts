/**
 * The stdout sink's transport: writes batches to a writable stream (process.stdout by
 * default) and resolves when the stream reports each batch written. Stream errors
 * (EPIPE when the reader went away) surface as write failures, never as a crash.
 */
import type { Transport } from '../delivery-queue.js';

/** Writes audit records to a stream it does not own: close() leaves the stream open. */
export class StreamTransport implements Transport {
  readonly description: string;
  readonly #stream: NodeJS.WritableStream;
  #lastError: Error | null = null;
  readonly #onError = (err: Error): void => {
    this.#lastError = err;
  };

  constructor(stream: NodeJS.WritableStream, description = 'stdout') {
    this.#stream = stream;
    this.description = description;
    stream.on('error', this.#onError);
  }

  write(chunk: Buffer): Promise<void> {
    const stream = this.#stream as NodeJS.WritableStream & { destroyed?: boolean };
    if (stream.destroyed === true) {
      return Promise.reject(this.#lastError ?? new Error(`${this.description} is closed`));
    }
    return new Promise((resolve, reject) => {
      stream.write(chunk, (err?: Error | null) => {
        if (err) reject(err);
        else resolve();
      });
    });
  }

  reopen(): void {
    // Nothing to reopen: the stream belongs to the process.
  }

  close(): Promise<void> {
    this.#stream.off('error', this.#onError);
    return Promise.resolve();
  }
}
