/**
 * Proves the delivery queue's batching now that records wait as strings: batches are
 * the records' exact UTF-8 bytes in order, bounded by maxBatchBytes (a larger record goes
 * alone), a partial write resumes where it stopped, a linger gathers records into one
 * write but never holds up flush(), close() or a full batch, and syslog frames count the
 * UTF-8 bytes of their message.
 */
import { describe, expect, it } from 'vitest';
import { DeliveryQueue, PartialWriteError } from '../src/audit/delivery-queue.js';
import type { Transport } from '../src/audit/delivery-queue.js';
import { SEVERITY, syslogFrame, syslogFrameText, syslogHeader } from '../src/audit/sinks/syslog.js';
import { NOOP_METRICS } from '../src/observability/metrics-types.js';

/** A transport that keeps every chunk; `failNext` makes the next write fail after taking some bytes. */
class MemoryTransport implements Transport {
  readonly description = 'memory';
  readonly chunks: Buffer[] = [];
  failNext: { taken: number } | null = null;
  #onWrite: (() => void) | null = null;

  write(chunk: Buffer): Promise<void> {
    const failure = this.failNext;
    this.failNext = null;
    if (failure !== null) {
      this.chunks.push(Buffer.from(chunk.subarray(0, failure.taken)));
      return Promise.reject(new PartialWriteError(failure.taken, new Error('disk hiccup')));
    }
    this.chunks.push(Buffer.from(chunk));
    this.#onWrite?.();
    return Promise.resolve();
  }

  /** Resolves at the next successful write. */
  nextWrite(): Promise<void> {
    return new Promise((resolve) => {
      this.#onWrite = () => {
        this.#onWrite = null;
        resolve();
      };
    });
  }

  reopen(): void {}

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function queueFor(transport: Transport, extra: { maxBatchBytes?: number; lingerMs?: number } = {}): DeliveryQueue {
  return new DeliveryQueue(transport, { capacity: 1000, onFailure: 'deny', metrics: NOOP_METRICS, retry: { initialMs: 1, maxMs: 1 }, ...extra });
}

const RECORDS = ['{"a":1}\n', '{"k":"größe/日本"}\n', '{"e":"😀"}\n', `{"long":"${'x'.repeat(300)}"}\n`, '{"z":"ß"}\n'];
const EXPECTED = Buffer.from(RECORDS.join(''), 'utf8');

describe('delivery queue batches', () => {
  it('are the exact UTF-8 bytes of the records, in order, within maxBatchBytes', async () => {
    const transport = new MemoryTransport();
    const queue = queueFor(transport, { maxBatchBytes: 40 });
    for (const record of RECORDS) queue.push(record);
    await queue.flush();
    expect(Buffer.concat(transport.chunks).equals(EXPECTED)).toBe(true);
    const longBytes = Buffer.byteLength(RECORDS[3] as string);
    for (const chunk of transport.chunks) expect(chunk.length <= 40 || chunk.length === longBytes).toBe(true);
    // Pushed in one turn, the first batch takes records while their UTF-8 size fits: 8 + 23
    // bytes; the third (13 bytes) would fit by UTF-16 length (8 + 17 + 11 = 36), not by bytes.
    expect(transport.chunks[0]?.length).toBe(Buffer.byteLength(RECORDS[0] as string) + Buffer.byteLength(RECORDS[1] as string));
  });

  it('resume a partial write where it stopped, without losing or doubling a byte', async () => {
    const transport = new MemoryTransport();
    transport.failNext = { taken: 11 };
    const queue = queueFor(transport);
    for (const record of RECORDS) queue.push(record);
    await queue.flush();
    expect(Buffer.concat(transport.chunks).equals(EXPECTED)).toBe(true);
    expect(queue.size).toBe(0);
  });

  it('with a linger, gather the records of the window into one write', async () => {
    const transport = new MemoryTransport();
    const queue = queueFor(transport, { lingerMs: 20 });
    const written = transport.nextWrite();
    for (const record of RECORDS) queue.push(record);
    await written;
    expect(transport.chunks).toHaveLength(1);
    expect(transport.chunks[0]?.equals(EXPECTED)).toBe(true);
  });

  it('never make flush() or close() wait out the linger', async () => {
    // A linger far beyond the test timeout: were it waited out, these would time out.
    const transport = new MemoryTransport();
    const queue = queueFor(transport, { lingerMs: 3_600_000 });
    for (const record of RECORDS) queue.push(record);
    await queue.flush();
    expect(Buffer.concat(transport.chunks).equals(EXPECTED)).toBe(true);
    queue.push('{"last":true}\n');
    await queue.close();
    expect(Buffer.concat(transport.chunks).toString('utf8').endsWith('{"last":true}\n')).toBe(true);
  });

  it('never make a full batch wait out the linger', async () => {
    const transport = new MemoryTransport();
    const queue = queueFor(transport, { lingerMs: 3_600_000, maxBatchBytes: 64 });
    const written = transport.nextWrite();
    queue.push(`${'y'.repeat(40)}\n`);
    expect(transport.chunks).toHaveLength(0);
    queue.push(`${'z'.repeat(40)}\n`);
    await written;
    expect(transport.chunks[0]?.toString('utf8')).toBe(`${'y'.repeat(40)}\n`);
    await queue.close();
  });
});

describe('syslog frames as text', () => {
  it('count the UTF-8 bytes of the message and encode to the same bytes as syslogFrame', () => {
    const header = syslogHeader('gate-1', 'etcdgate', 7);
    const json = JSON.stringify({ key: '/größe/日本/😀' });
    const time = new Date('2024-01-15T10:00:00.000Z');
    const text = syslogFrameText(header, SEVERITY.info, 'call', time, json);
    const space = text.indexOf(' ');
    expect(Number(text.slice(0, space))).toBe(Buffer.byteLength(text.slice(space + 1), 'utf8'));
    expect(Number(text.slice(0, space))).toBeGreaterThan(text.length - space - 1);
    expect(syslogFrame(header, SEVERITY.info, 'call', time, json).equals(Buffer.from(text, 'utf8'))).toBe(true);
  });
});
