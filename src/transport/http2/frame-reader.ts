/**
 * Cuts the bytes a socket delivers into HTTP/2 frames (RFC 9113 4.1). A frame that lies
 * whole inside one chunk is handed over as a view of that chunk, with no copy; one that
 * spans chunks is gathered and joined once, when its last byte arrives.
 *
 * Invariant: at most one frame (header plus at most `maxFrameSize` bytes) is ever held,
 * so what a peer can make this reader keep is bounded by the frame size we advertised.
 * A longer frame is a FRAME_SIZE_ERROR before any of its payload is read.
 */
import { FRAME_HEADER_BYTES, FRAME_SIZE_ERROR } from './constants.js';

/** Receives each complete frame; returns false to stop reading (the connection is closing). */
export interface FrameSink {
  onFrame(type: number, flags: number, streamId: number, payload: Buffer): boolean;
}

export class FrameReader {
  private parts: Buffer[] = [];
  private partBytes = 0;
  /** Bytes needed before the held parts can be parsed further (9, then 9 + length). */
  private need = FRAME_HEADER_BYTES;

  /** `maxFrameSize`: the largest payload accepted (our SETTINGS_MAX_FRAME_SIZE). */
  constructor(public maxFrameSize: number) {}

  /**
   * Parses `chunk` (and what was held before it), calling `sink` per frame. Returns 0, or
   * the connection error code to close with (FRAME_SIZE_ERROR).
   */
  push(chunk: Buffer, sink: FrameSink): number {
    let buf = chunk;
    if (this.partBytes > 0) {
      this.parts.push(chunk);
      this.partBytes += chunk.length;
      if (this.partBytes < this.need) return 0;
      buf = Buffer.concat(this.parts, this.partBytes);
      this.parts = [];
      this.partBytes = 0;
    }
    let pos = 0;
    const end = buf.length;
    while (end - pos >= FRAME_HEADER_BYTES) {
      const length = ((buf[pos] as number) << 16) | ((buf[pos + 1] as number) << 8) | (buf[pos + 2] as number);
      if (length > this.maxFrameSize) return FRAME_SIZE_ERROR;
      const frameEnd = pos + FRAME_HEADER_BYTES + length;
      if (frameEnd > end) {
        this.hold(buf.subarray(pos), FRAME_HEADER_BYTES + length);
        return 0;
      }
      const type = buf[pos + 3] as number;
      const flags = buf[pos + 4] as number;
      const streamId = buf.readUInt32BE(pos + 5) & 0x7fff_ffff;
      if (!sink.onFrame(type, flags, streamId, buf.subarray(pos + FRAME_HEADER_BYTES, frameEnd))) return 0;
      pos = frameEnd;
    }
    if (pos < end) this.hold(buf.subarray(pos), FRAME_HEADER_BYTES);
    else this.need = FRAME_HEADER_BYTES;
    return 0;
  }

  /** Bytes held for a frame not yet complete. */
  get held(): number {
    return this.partBytes;
  }

  private hold(rest: Buffer, need: number): void {
    // A view of a large chunk would keep the whole chunk alive: copy small remainders.
    this.parts = [rest.length < 4096 ? Buffer.from(rest) : rest];
    this.partBytes = rest.length;
    this.need = need;
  }
}
