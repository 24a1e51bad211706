/**
 * The audit summary of a response (summarizeResponse: header revision and key count)
 * read from the framed bytes as they are relayed, in pieces of any size, without
 * keeping the message: only the top-level fields are walked, the large ones (kvs) are
 * skipped as they stream past, and only the small header is gathered.
 */
import { headerRevision, type ResponseSummary } from './responses.js';

const RANGE = '/etcdserverpb.KV/Range';
const DELETE_RANGE = '/etcdserverpb.KV/DeleteRange';
/** A ResponseHeader is a few varints; anything longer is not gathered. */
const MAX_HEADER_BYTES = 256;

const enum State {
  Prefix,
  Tag,
  Length,
  Varint,
  Body,
  Done,
}

export class ResponseScanner {
  private state = State.Prefix;
  private prefixLeft = 5;
  /** Bytes of the message not yet walked. */
  private messageLeft = 0;
  private varint = 0;
  private shift = 0;
  private field = 0;
  private bodyLeft = 0;
  private header: Buffer[] | undefined;
  private headerBytes = 0;
  private kvs = 0;
  private count: number | undefined;
  private revision: string | undefined;
  private broken = false;

  constructor(private readonly path: string) {}

  push(bytes: Buffer): void {
    let pos = 0;
    const end = bytes.length;
    while (pos < end && this.state !== State.Done && !this.broken) {
      switch (this.state) {
        case State.Prefix: {
          const take = Math.min(this.prefixLeft, end - pos);
          for (let i = 0; i < take; i += 1) {
            const index = 5 - this.prefixLeft + i;
            // Bytes 1..4 of the prefix are the message length, big-endian.
            if (index >= 1) this.messageLeft = this.messageLeft * 256 + (bytes[pos + i] as number);
          }
          this.prefixLeft -= take;
          pos += take;
          if (this.prefixLeft === 0) this.state = this.messageLeft === 0 ? State.Done : State.Tag;
          break;
        }
        case State.Tag:
        case State.Length:
        case State.Varint: {
          const byte = bytes[pos] as number;
          pos += 1;
          this.messageLeft -= 1;
          this.varint += (byte & 0x7f) * 2 ** this.shift;
          this.shift += 7;
          if ((byte & 0x80) !== 0) {
            if (this.shift > 63) this.broken = true;
            break;
          }
          const value = this.varint;
          this.varint = 0;
          this.shift = 0;
          this.afterVarint(value);
          break;
        }
        case State.Body: {
          const take = Math.min(this.bodyLeft, end - pos);
          if (this.header !== undefined && this.headerBytes + take <= MAX_HEADER_BYTES) {
            this.header.push(bytes.subarray(pos, pos + take));
            this.headerBytes += take;
          }
          this.bodyLeft -= take;
          this.messageLeft -= take;
          pos += take;
          if (this.bodyLeft === 0) {
            if (this.header !== undefined) this.readHeader();
            this.nextField();
          }
          break;
        }
      }
    }
  }

  private afterVarint(value: number): void {
    if (this.state === State.Tag) {
      this.field = Math.floor(value / 8);
      const wireType = value % 8;
      if (wireType === 0) this.state = State.Varint;
      else if (wireType === 2) this.state = State.Length;
      else if (wireType === 1 || wireType === 5) {
        this.bodyLeft = wireType === 1 ? 8 : 4;
        this.state = State.Body;
      } else this.broken = true;
      return;
    }
    if (this.state === State.Varint) {
      if ((this.path === RANGE && this.field === 4) || (this.path === DELETE_RANGE && this.field === 2)) this.count = value;
      this.nextField();
      return;
    }
    // Length of a length-delimited field.
    this.bodyLeft = value;
    if (this.field === 1) {
      this.header = [];
      this.headerBytes = 0;
    } else if (this.path === RANGE && this.field === 2) this.kvs += 1;
    this.state = State.Body;
    if (value === 0) {
      if (this.header !== undefined) this.readHeader();
      this.nextField();
    }
  }

  private nextField(): void {
    this.state = this.messageLeft <= 0 ? State.Done : State.Tag;
  }

  private readHeader(): void {
    const parts = this.header ?? [];
    this.header = undefined;
    // Usually the header arrives in one piece: read it where it lies.
    const header = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    try {
      const revision = headerRevision(header);
      if (revision !== undefined) this.revision = revision;
    } catch {
      // A header that is not a message: the record goes without a revision, as before.
    }
  }

  /** What was read; empty when the bytes could not be walked. */
  summary(): ResponseSummary {
    if (this.broken) return {};
    const summary: ResponseSummary = {};
    if (this.revision !== undefined) summary.revision = this.revision;
    if (this.path === RANGE) summary.count = this.kvs > 0 ? this.kvs : (this.count ?? 0);
    else if (this.path === DELETE_RANGE) summary.count = this.count ?? 0;
    return summary;
  }
}
