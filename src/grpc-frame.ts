/**
 * gRPC's length-prefixed message framing (gRPC over HTTP/2, "Length-Prefixed-Message"):
 * one flag byte (1 = compressed), a 32-bit big-endian length, then the message. Shared by
 * the unary path's two sides, the client's call and etcd's.
 */

/** Bytes of the prefix before each message. */
export const FRAME_PREFIX_BYTES = 5;

/** `message` behind an uncompressed prefix, in one new buffer. */
export function frameMessage(message: Buffer): Buffer {
  const frame = Buffer.allocUnsafe(FRAME_PREFIX_BYTES + message.length);
  frame[0] = 0;
  frame.writeUInt32BE(message.length, 1);
  message.copy(frame, FRAME_PREFIX_BYTES);
  return frame;
}
