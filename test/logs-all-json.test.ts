/**
 * Everything etcdgate writes to stderr is one JSON object per line, process warnings
 * included: Node's own plain-text warning printer is replaced by the logger. The
 * gateway runs as operators run it (a child process) in front of an etcd reached by IP
 * address, which is where a Node deprecation warning (DEP0123) used to appear as text.
 * A warning is forced with NODE_TLS_REJECT_UNAUTHORIZED=0 (Node warns about it at the
 * first TLS connection), so the test does not depend on which library warns today.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { GatewayProcess } from './support/gateway-process.js';
import { useGatewayStack } from './support/stack.js';

const stack = useGatewayStack({ gateway: false });
let gate: GatewayProcess;

beforeAll(async () => {
  gate = await stack.startGatewayProcess({ audit: { sink: 'stdout' }, env: { NODE_TLS_REJECT_UNAUTHORIZED: '0' } });
}, 60_000);

afterAll(async () => {
  await gate?.stop();
});

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line !== '');
}

describe('stderr', () => {
  it('carries process warnings as JSON log lines, and nothing but JSON', async () => {
    // The upstream connection is made at start; its warning follows within moments.
    const warning = await vi.waitFor(
      () => {
        const found = lines(gate.stderr())
          .map((line) => JSON.parse(line) as { msg?: string; level?: number; warning?: { name?: string; message?: string } })
          .find((entry) => entry.msg === 'process warning' && entry.warning?.message?.includes('NODE_TLS_REJECT_UNAUTHORIZED') === true);
        if (found === undefined) throw new Error(`no warning line yet:\n${gate.stderr()}`);
        return found;
      },
      { timeout: 15_000, interval: 100 },
    );
    expect(warning.level).toBe(40);
    expect(warning.warning?.name).toBe('Warning');
    for (const line of lines(gate.stderr())) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(gate.stderr()).not.toMatch(/^\(node:\d+\)/mu);
  });
});
