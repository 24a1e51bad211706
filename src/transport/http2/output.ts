/**
 * The bytes a connection has produced and not yet handed to its socket. Frames are
 * written into a slab (one allocation per 64 KiB of small frames instead of one per
 * frame); large payloads are queued as the buffers they are, without a copy. Everything
 * produced during one turn of the event loop leaves in one socket write (see
 * Http2Connection.flush): measured, the number of writes per call, not their size, is
 * what a TLS socket's cost follows.
 *
 * A slab region, once taken, belongs to the socket until written; the slab is never
 * rewound, only replaced when full, so nothing the socket still holds is overwritten.
 */
import { FRAME_HEADER_BYTES } from './constants.js';

const SLAB_BYTES = 64 * 1024;
/** Payloads at least this long are queued by reference rather than copied into the slab. */
const COPY_LIMIT = 1024;

export class Output {
  private slab = Buffer.allocUnsafe(SLAB_BYTES);
  /** Start of the region not yet taken, and the write position. */
  private start = 0;
  private pos = 0;
  private readonly segments: Buffer[] = [];
  /** Bytes produced and not yet taken. */
  bytes = 0;

  /** Writes a frame header (and returns nothing: the payload follows through the other methods). */
  header(length: number, type: number, flags: number, streamId: number): void {
    this.ensure(FRAME_HEADER_BYTES);
    const slab = this.slab;
    let p = this.pos;
    slab[p++] = (length >>> 16) & 0xff;
    slab[p++] = (length >>> 8) & 0xff;
    slab[p++] = length & 0xff;
    slab[p++] = type;
    slab[p++] = flags;
    slab.writeUInt32BE(streamId, p);
    this.pos = p + 4;
    this.bytes += FRAME_HEADER_BYTES;
  }

  /** A 32-bit big-endian value. */
  uint32(value: number): void {
    this.ensure(4);
    this.slab.writeUInt32BE(value >>> 0, this.pos);
    this.pos += 4;
    this.bytes += 4;
  }

  /** A 16-bit big-endian value. */
  uint16(value: number): void {
    this.ensure(2);
    this.slab.writeUInt16BE(value, this.pos);
    this.pos += 2;
    this.bytes += 2;
  }

  /** Payload bytes: copied when short, queued by reference when long. */
  bytesOf(data: Buffer): void {
    const length = data.length;
    if (length === 0) return;
    if (length < COPY_LIMIT) {
      this.ensure(length);
      data.copy(this.slab, this.pos);
      this.pos += length;
    } else {
      this.cut();
      this.segments.push(data);
    }
    this.bytes += length;
  }

  /** Everything produced so far, in order, as buffers for one socket write. */
  take(): Buffer[] {
    this.cut();
    const taken = this.segments.splice(0, this.segments.length);
    this.bytes = 0;
    return taken;
  }

  private ensure(length: number): void {
    if (this.pos + length <= this.slab.length) return;
    this.cut();
    this.slab = Buffer.allocUnsafe(Math.max(SLAB_BYTES, length));
    this.start = 0;
    this.pos = 0;
  }

  /** Moves the slab's pending region into the segment list. */
  private cut(): void {
    if (this.pos > this.start) {
      this.segments.push(this.slab.subarray(this.start, this.pos));
      this.start = this.pos;
    }
  }
}
