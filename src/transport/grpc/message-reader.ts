/**
 * gRPC's length-prefixed messages (gRPC over HTTP/2, "Length-Prefixed-Message": one flag
 * byte, 1 for compressed, a 32-bit big-endian length, then the message) cut out of a
 * stream's DATA payloads. A message that arrives whole inside one payload is handed over
 * as a view, together with its framed form (prefix included) so a proxy can forward
 * exactly the bytes it received; one that spans payloads is gathered and joined once.
 *
 * Nothing is allocated from a declared length: a peer announcing a 4 GiB message and
 * sending ten bytes makes this reader hold ten bytes. Declared lengths above the limit
 * are refused as soon as the prefix is complete.
 */

export const PREFIX_BYTES = 5;

/** Receives each complete message. `framed` is the prefix and message as received, when contiguous. */
export interface MessageSink {
  onMessage(compressed: boolean, message: Buffer, framed: Buffer | undefined): void;
}

/** Why a message was refused while being read. */
export type ReadError = { readonly kind: 'too-large'; readonly declared: number } | { readonly kind: 'bad-flag'; readonly flag: number };

export class MessageReader {
  private prefix = Buffer.alloc(PREFIX_BYTES);
  private prefixHave = 0;
  /** Length of the message being read, once its prefix is complete; -1 between messages. */
  private declared = -1;
  private compressed = false;
  private parts: Buffer[] = [];
  private partBytes = 0;

  /** `maxBytes`: the largest message accepted (declared length); -1 for no limit. */
  constructor(private readonly maxBytes: number) {}

  /** True while a message has started and is not complete. */
  get reading(): boolean {
    return this.prefixHave > 0 || this.declared >= 0;
  }

  /** Bytes of the unfinished message held so far. */
  get held(): number {
    return this.partBytes + this.prefixHave;
  }

  /** Declared length of the message being read, or -1. */
  get declaredLength(): number {
    return this.declared;
  }

  /** Feeds one DATA payload; returns an error (and reads nothing further) when a message is refused. */
  push(data: Buffer, sink: MessageSink): ReadError | undefined {
    let pos = 0;
    const end = data.length;
    while (pos < end) {
      if (this.declared < 0) {
        // Fast path: a whole prefix here.
        if (this.prefixHave === 0 && end - pos >= PREFIX_BYTES) {
          const flag = data[pos] as number;
          const length = data.readUInt32BE(pos + 1);
          const error = this.start(flag, length);
          if (error !== undefined) return error;
          const bodyStart = pos + PREFIX_BYTES;
          if (end - bodyStart >= length) {
            const message = data.subarray(bodyStart, bodyStart + length);
            this.declared = -1;
            sink.onMessage(flag === 1, message, data.subarray(pos, bodyStart + length));
            pos = bodyStart + length;
            continue;
          }
          pos = bodyStart;
        } else {
          const take = Math.min(PREFIX_BYTES - this.prefixHave, end - pos);
          data.copy(this.prefix, this.prefixHave, pos, pos + take);
          this.prefixHave += take;
          pos += take;
          if (this.prefixHave < PREFIX_BYTES) return undefined;
          const error = this.start(this.prefix[0] as number, this.prefix.readUInt32BE(1));
          if (error !== undefined) return error;
        }
        if (this.declared === 0) {
          this.finish(sink);
          continue;
        }
      }
      const need = this.declared - this.partBytes;
      const take = Math.min(need, end - pos);
      this.parts.push(data.subarray(pos, pos + take));
      this.partBytes += take;
      pos += take;
      if (this.partBytes === this.declared) this.finish(sink);
    }
    return undefined;
  }

  private start(flag: number, length: number): ReadError | undefined {
    if (flag > 1) return { kind: 'bad-flag', flag };
    if (this.maxBytes >= 0 && length > this.maxBytes) return { kind: 'too-large', declared: length };
    this.compressed = flag === 1;
    this.declared = length;
    this.prefixHave = 0;
    return undefined;
  }

  private finish(sink: MessageSink): void {
    const message = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts, this.partBytes);
    const compressed = this.compressed;
    this.parts = [];
    this.partBytes = 0;
    this.declared = -1;
    sink.onMessage(compressed, message, undefined);
  }
}

/** `message` behind an uncompressed prefix, in one new buffer. */
export function frameMessage(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(PREFIX_BYTES + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, PREFIX_BYTES);
  return frame;
}

/** The 5-byte prefix of an uncompressed message of `length` bytes. */
export function messagePrefix(length: number): Buffer {
  const prefix = Buffer.allocUnsafe(PREFIX_BYTES);
  prefix[0] = 0;
  prefix.writeUInt32BE(length, 1);
  return prefix;
}
