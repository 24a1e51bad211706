/**
 * A protobuf message with some of its length-delimited fields replaced, written out in
 * one buffer: the way encryption at rest swaps a value for its sealed or opened form
 * while every other byte of the message (unknown fields included) stays as etcd or the
 * client wrote it.
 *
 * Edits nest: a field's new content may itself be a Splice of the field's old bytes,
 * so a KeyValue inside a RangeResponse, or a PutRequest inside a Txn, is rewritten with
 * the length prefixes of every enclosing message recomputed, and the whole message is
 * allocated and copied once, when `finish` is called. Values of a few KiB are where this
 * matters: each buffer of 4 KiB or more is its own ArrayBuffer in Node (about 2.5 µs to
 * allocate on the bench machine), which had made a one-key 4 KiB Range cost four of them.
 */
import { WIRE_LEN } from './wire.js';

/** A field's new bytes: one buffer, several to be written one after another, or a nested splice. */
export type FieldContent = Buffer | readonly Buffer[] | Splice;

interface Edit {
  readonly start: number;
  readonly end: number;
  readonly field: number;
  readonly content: FieldContent | null;
  readonly length: number;
}

function contentLength(content: FieldContent): number {
  if (content instanceof Splice) return content.length;
  if (Buffer.isBuffer(content)) return content.length;
  let length = 0;
  for (const part of content) length += part.length;
  return length;
}

function varintLength(value: number): number {
  let length = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    length += 1;
  }
  return length;
}

function writeVarint(out: Buffer, offset: number, value: number): number {
  let at = offset;
  let v = value;
  while (v >= 0x80) {
    out[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  out[at++] = v;
  return at;
}

export class Splice {
  readonly #source: Buffer;
  readonly #edits: Edit[] = [];
  /** The source's bytes that edits remove, and the bytes they add. */
  #removed = 0;
  #added = 0;

  constructor(source: Buffer) {
    this.#source = source;
  }

  /** Whether anything was replaced (a splice with no edit is the source as it was). */
  get changed(): boolean {
    return this.#edits.length > 0;
  }

  /** The length of the rewritten message. */
  get length(): number {
    return this.#source.length - this.#removed + this.#added;
  }

  /**
   * Gives the field spanning `[start, end)` of the source new content as field `field`,
   * or drops it (null). Spans must come in message order and not overlap.
   */
  replace(start: number, end: number, field: number, content: FieldContent | null): void {
    const last = this.#edits.at(-1);
    if (start < (last?.end ?? 0) || end < start || end > this.#source.length) throw new RangeError('splice: edits out of order');
    const length = content === null ? 0 : contentLength(content);
    this.#edits.push({ start, end, field, content, length });
    this.#removed += end - start;
    if (content !== null) this.#added += varintLength(field * 8 + WIRE_LEN) + varintLength(length) + length;
  }

  /** Adds field `field` after everything else. */
  append(field: number, content: FieldContent): void {
    this.replace(this.#source.length, this.#source.length, field, content);
  }

  /** Writes the rewritten message at `offset` of `out`; returns the offset after it. */
  writeTo(out: Buffer, offset: number): number {
    const source = this.#source;
    let at = offset;
    let copied = 0;
    for (const edit of this.#edits) {
      at += source.copy(out, at, copied, edit.start);
      copied = edit.end;
      const content = edit.content;
      if (content === null) continue;
      at = writeVarint(out, at, edit.field * 8 + WIRE_LEN);
      at = writeVarint(out, at, edit.length);
      if (content instanceof Splice) at = content.writeTo(out, at);
      else if (Buffer.isBuffer(content)) at += content.copy(out, at);
      else for (const part of content) at += part.copy(out, at);
    }
    return at + source.copy(out, at, copied);
  }

  /**
   * The rewritten message as buffers to be written one after another, with nothing
   * copied: views of the source between edits, the new contents as they are, and small
   * buffers for the recomputed tags and lengths. For a caller that copies what it sends
   * anyway (the HTTP/2 output gathers small writes), this saves the message's buffer.
   */
  parts(): Buffer[] {
    const out: Buffer[] = [];
    this.#collect(out);
    return out;
  }

  #collect(out: Buffer[]): void {
    const source = this.#source;
    let copied = 0;
    for (const edit of this.#edits) {
      if (edit.start > copied) out.push(source.subarray(copied, edit.start));
      copied = edit.end;
      const content = edit.content;
      if (content === null) continue;
      const tag = edit.field * 8 + WIRE_LEN;
      const head = Buffer.allocUnsafe(varintLength(tag) + varintLength(edit.length));
      writeVarint(head, writeVarint(head, 0, tag), edit.length);
      out.push(head);
      if (content instanceof Splice) content.#collect(out);
      else if (Buffer.isBuffer(content)) {
        if (content.length > 0) out.push(content);
      } else for (const part of content) if (part.length > 0) out.push(part);
    }
    if (copied < source.length) out.push(source.subarray(copied));
  }

  /**
   * The rewritten message in one new buffer, after `reserve` bytes left for the caller
   * (a gRPC message prefix, so the message need not be copied again to be framed).
   */
  finish(reserve = 0): Buffer {
    const out = Buffer.allocUnsafe(reserve + this.length);
    this.writeTo(out, reserve);
    return out;
  }
}
