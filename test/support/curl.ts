/**
 * Runs the real curl against an HTTPS endpoint with a client certificate, as probes,
 * scripts and JSON clients of etcd's gateway do, and returns the status, headers and
 * body of the (last) answer. HTTP/1.1 by default; `http: '2'` asks for HTTP/2.
 */
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { CertPair } from './pki.js';

export interface CurlOptions {
  readonly ca: string;
  /** Client certificate; null sends none. */
  readonly client: CertPair | null;
  /** Default POST when a body is given, GET otherwise. */
  readonly method?: string;
  readonly body?: string;
  readonly http?: '1.1' | '2';
  readonly headers?: readonly string[];
  /** Extra curl arguments (e.g. --no-alpn). */
  readonly args?: readonly string[];
  readonly timeoutMs?: number;
}

export interface CurlResult {
  /** HTTP status; 0 when curl got no answer. */
  readonly status: number;
  /** "1.1" or "2". */
  readonly httpVersion: string;
  /** Lower-cased header names; the last answer's headers only. */
  readonly headers: Readonly<Record<string, string>>;
  readonly body: string;
  /** curl's exit code and stderr (with -v output when asked). */
  readonly exitCode: number;
  readonly stderr: string;
}

/** Parses the last header block of curl's -D dump. */
function lastHeaderBlock(dump: string): Record<string, string> {
  const blocks = dump.split(/\r\n\r\n/u).filter((block) => block.trim() !== '');
  const headers: Record<string, string> = {};
  for (const line of (blocks.at(-1) ?? '').split('\r\n').slice(1)) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return headers;
}

/** One curl request to `url`. */
export async function curl(url: string, options: CurlOptions): Promise<CurlResult> {
  const dir = await mkdtemp(path.join(tmpdir(), 'etcdgate-curl-'));
  try {
    const args = [
      '-sS',
      options.http === '2' ? '--http2' : '--http1.1',
      '--cacert', options.ca,
      ...(options.client === null ? [] : ['--cert', options.client.cert, '--key', options.client.key]),
      '-D', path.join(dir, 'headers'),
      '-o', path.join(dir, 'body'),
      '-w', '%{http_code} %{http_version}',
      '--max-time', String(Math.ceil((options.timeoutMs ?? 15_000) / 1000)),
      ...(options.method === undefined ? [] : ['-X', options.method]),
      ...(options.body === undefined ? [] : ['--data-binary', '@-', '-H', 'Content-Type: application/json']),
      ...(options.headers ?? []).flatMap((header) => ['-H', header]),
      ...(options.args ?? []),
      url,
    ];
    const { code, stdout, stderr } = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
      const child = execFile('curl', args, { encoding: 'utf8' }, (error, out, err) => {
        const exit = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
        resolve({ code: exit, stdout: out, stderr: err });
      });
      child.stdin?.end(options.body ?? '');
    });
    const [status, httpVersion] = stdout.trim().split(' ');
    const dump = await readFile(path.join(dir, 'headers'), 'utf8').catch(() => '');
    const body = await readFile(path.join(dir, 'body'), 'utf8').catch(() => '');
    return { status: Number(status ?? 0), httpVersion: httpVersion ?? '', headers: lastHeaderBlock(dump), body, exitCode: code, stderr };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** A running curl whose answer body is read line by line (streaming calls). */
export interface CurlStream {
  /** Every complete line of the body so far. */
  readonly lines: () => string[];
  /** Resolves with curl's exit code once it exits. */
  readonly exited: Promise<number>;
  stop(): void;
}

/** Starts curl with -N (no buffering) and collects the answer body's lines as they arrive. */
export function curlStream(url: string, options: CurlOptions): CurlStream {
  const args = [
    '-sS', '-N',
    options.http === '2' ? '--http2' : '--http1.1',
    '--cacert', options.ca,
    ...(options.client === null ? [] : ['--cert', options.client.cert, '--key', options.client.key]),
    ...(options.body === undefined ? [] : ['--data-binary', '@-', '-H', 'Content-Type: application/json']),
    ...(options.headers ?? []).flatMap((header) => ['-H', header]),
    ...(options.args ?? []),
    url,
  ];
  const child = spawn('curl', args, { stdio: ['pipe', 'pipe', 'ignore'] });
  let text = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
  child.stdin.on('error', () => undefined);
  child.stdin.end(options.body ?? '');
  const exited = new Promise<number>((resolve) => child.once('close', (code) => resolve(code ?? -1)));
  return {
    lines: () => text.split('\n').slice(0, -1),
    exited,
    stop: () => child.kill('SIGKILL'),
  };
}
