/**
 * Proves that the logger writes one JSON object per line at the configured level and
 * redacts fields named value/password/token/authorization even when code passes them
 * by mistake, at the top level and nested a few levels down.
 */
import type { DestinationStream } from 'pino';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/observability/logger.js';

function capture(): { stream: DestinationStream; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  return {
    stream: { write: (chunk: string) => void chunks.push(chunk) },
    lines: () =>
      chunks
        .join('')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => JSON.parse(line) as Record<string, unknown>),
  };
}

describe('createLogger', () => {
  it('writes JSON lines at or above the configured level only', () => {
    const { stream, lines } = capture();
    const logger = createLogger('warn', stream);
    logger.info('quiet');
    logger.warn({ endpoint: 'https://127.0.0.1:2379' }, 'upstream slow');
    logger.error('broken');
    const written = lines();
    expect(written.map((line) => line['msg'])).toEqual(['upstream slow', 'broken']);
    expect(written[0]).toMatchObject({ level: 40, name: 'etcdgate', endpoint: 'https://127.0.0.1:2379' });
  });

  it('redacts secret-named fields at any of the first four levels', () => {
    const { stream, lines } = capture();
    const logger = createLogger('info', stream);
    logger.info(
      {
        value: 'v-top',
        password: 'p-top',
        token: 't-top',
        authorization: 'Bearer a-top',
        request: { key: 'L2E=', value: 'v-1', headers: { authorization: 'Bearer a-2' } },
        deep: { a: { b: { password: 'p-3' } } },
      },
      'call',
    );
    const [line] = lines();
    const text = JSON.stringify(line);
    for (const secret of ['v-top', 'p-top', 't-top', 'a-top', 'v-1', 'a-2', 'p-3']) expect(text).not.toContain(secret);
    expect(line).toMatchObject({
      value: '[redacted]',
      password: '[redacted]',
      token: '[redacted]',
      authorization: '[redacted]',
      request: { key: 'L2E=', value: '[redacted]', headers: { authorization: '[redacted]' } },
      deep: { a: { b: { password: '[redacted]' } } },
    });
  });

  it('is silent at level silent', () => {
    const { stream, lines } = capture();
    const logger = createLogger('silent', stream);
    logger.fatal('nothing');
    expect(lines()).toEqual([]);
  });
});
