/**
 * Debian's python3-hpack as an independent HPACK peer for differential tests: one
 * long-lived Python child per test file (test/support/hpack-peer.py), requests and answers
 * as JSON lines, answered in order. Header strings are latin1 (one char per octet) both ways.
 * A missing python3-hpack fails the first request with Python's error (tests never skip).
 */
import { spawn } from 'node:child_process';
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const SCRIPT = fileURLToPath(new URL('./hpack-peer.py', import.meta.url));
/** Debian's interpreter: the one that has python3-hpack (a pyenv python3 on PATH may not). */
const PYTHON = '/usr/bin/python3';

/** A header as Python reports or takes it: name, value, never-indexed. */
export type PeerHeader = [name: string, value: string, neverIndexed: boolean];

/** What an encode request returns. */
export interface PeerEncoded {
  readonly block: Buffer;
  /** The encoder's dynamic table after the block, newest first, flat. */
  readonly table: string[];
}

/** What a decode request returns. */
export interface PeerDecoded {
  readonly headers: PeerHeader[];
  /** The decoder's dynamic table after the block, newest first, flat. */
  readonly table: string[];
}

type Answer = { ok: true; [key: string]: unknown } | { ok: false; error: string };

function isRecord(x: unknown): x is Record<string, unknown> {
  return typeof x === 'object' && x !== null && !Array.isArray(x);
}

function parseAnswer(line: string): Answer {
  const parsed: unknown = JSON.parse(line);
  if (!isRecord(parsed)) throw new Error(`hpack peer: not an object: ${line}`);
  if (parsed['ok'] === true) return { ...parsed, ok: true };
  return { ok: false, error: String(parsed['error']) };
}

function stringTuples(x: unknown, width: number, what: string): unknown[][] {
  if (!Array.isArray(x)) throw new Error(`hpack peer: ${what} is not a list`);
  return x.map((row: unknown) => {
    if (!Array.isArray(row) || row.length !== width || typeof row[0] !== 'string' || typeof row[1] !== 'string') {
      throw new Error(`hpack peer: bad ${what} row`);
    }
    return row as unknown[];
  });
}

function flatTable(x: unknown): string[] {
  return stringTuples(x, 2, 'table').flatMap((row) => [row[0] as string, row[1] as string]);
}

/** The Python child and its request queue. */
export class HpackPeer {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: Array<{ resolve: (a: Answer) => void; reject: (e: Error) => void }> = [];
  private stderr = '';
  private exited: Error | undefined;

  private constructor() {
    this.child = spawn(PYTHON, [SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr.on('data', (chunk: Buffer) => (this.stderr += chunk.toString('utf8')));
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const waiter = this.waiting.shift();
      if (waiter === undefined) return;
      try {
        waiter.resolve(parseAnswer(line));
      } catch (err) {
        waiter.reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
    const fail = (why: string): void => {
      this.exited = new Error(`hpack peer (${PYTHON} ${SCRIPT}) ${why}: ${this.stderr.trim()}`);
      for (const waiter of this.waiting.splice(0)) waiter.reject(this.exited);
    };
    this.child.on('error', (err) => fail(`failed to start: ${err.message}`));
    this.child.on('close', (code) => fail(`exited with ${code}`));
  }

  /** Starts the child; a first request tells whether python3-hpack is there. */
  static start(): HpackPeer {
    return new HpackPeer();
  }

  private request(body: Record<string, unknown>): Promise<Answer> {
    if (this.exited !== undefined) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.child.stdin.write(`${JSON.stringify(body)}\n`);
    });
  }

  private async requestOk(body: Record<string, unknown>): Promise<Record<string, unknown>> {
    const answer = await this.request(body);
    if (!answer.ok) throw new Error(`hpack peer refused ${String(body['op'])}: ${answer.error}`);
    return answer;
  }

  /** The installed hpack version (also proves python3-hpack imports). */
  async version(): Promise<string> {
    const answer = await this.requestOk({ op: 'version', conn: 0 });
    return String(answer['version']);
  }

  /** Encodes one block on connection `conn`'s encoder; `tableSize` first changes its table size. */
  async encode(conn: number, headers: readonly PeerHeader[], huffman: boolean, tableSize?: number): Promise<PeerEncoded> {
    const answer = await this.requestOk({ op: 'encode', conn, headers, huffman, tableSize: tableSize ?? null });
    return { block: Buffer.from(String(answer['block']), 'hex'), table: flatTable(answer['table']) };
  }

  /**
   * Decodes one block on connection `conn`'s decoder, which allows table sizes up to
   * `maxTableSize`. Resolves to the error text when Python refuses the block.
   */
  async decode(conn: number, block: Buffer, maxTableSize: number): Promise<PeerDecoded | { error: string }> {
    const answer = await this.request({ op: 'decode', conn, block: block.toString('hex'), maxTableSize });
    if (!answer.ok) return { error: answer.error };
    const headers = stringTuples(answer['headers'], 3, 'headers').map(
      (row): PeerHeader => [row[0] as string, row[1] as string, row[2] === true],
    );
    return { headers, table: flatTable(answer['table']) };
  }

  /** Forgets connection `conn`'s encoder and decoder. */
  async close(conn: number): Promise<void> {
    await this.requestOk({ op: 'close', conn });
  }

  /** Ends the child and waits for it to exit. */
  async stop(): Promise<void> {
    if (this.exited !== undefined) return;
    const closed = new Promise<void>((resolve) => this.child.once('close', () => resolve()));
    this.child.stdin.end();
    await closed;
  }
}
