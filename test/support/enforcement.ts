/**
 * Assertions shared by the policy-enforcement suites: a call refused the way etcd refuses
 * it (PERMISSION_DENIED with etcd's exact text), and reads straight from etcd (bypassing
 * etcdgate) to prove a refused write never happened.
 */
import type * as grpc from '@grpc/grpc-js';
import { expect } from 'vitest';
import { callEtcd } from './raw-client.js';

/** etcd's text for a denial; clients compare against it byte for byte. */
export const DENIED_TEXT = 'etcdserver: permission denied';

/** gRPC PERMISSION_DENIED. */
export const PERMISSION_DENIED_CODE = 7;

/** Bytes of a UTF-8 string. */
export function b(text: string): Buffer {
  return Buffer.from(text, 'utf8');
}

/** The error `call` rejects with; fails the test if it resolves. */
export async function rejection(call: Promise<unknown>): Promise<{ code?: unknown; details?: unknown }> {
  const outcome = await call.then(
    (value: unknown) => ({ resolved: true as const, value }),
    (error: unknown) => ({ resolved: false as const, error }),
  );
  if (outcome.resolved) throw new Error(`expected a refusal, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeTypeOf('object');
  return outcome.error as { code?: unknown; details?: unknown };
}

/** Asserts `call` fails with PERMISSION_DENIED and exactly etcd's message. */
export async function expectDenied(call: Promise<unknown>): Promise<void> {
  const error = await rejection(call);
  expect({ code: error.code, details: error.details }).toEqual({ code: PERMISSION_DENIED_CODE, details: DENIED_TEXT });
}

/** Asserts `call` is not refused by etcdgate: it succeeds, or fails with anything but PERMISSION_DENIED. */
export async function expectNotDenied(call: Promise<unknown>): Promise<void> {
  const error = await call.then(
    () => undefined,
    (e: unknown) => e as { code?: unknown; details?: unknown },
  );
  if (error === undefined) return;
  expect(error.code, String(error.details)).not.toBe(PERMISSION_DENIED_CODE);
}

/** The value of `key` as etcd itself has it (undefined: no such key), read with a client straight to etcd. */
export async function valueInEtcd(direct: grpc.Client, key: string): Promise<string | undefined> {
  const response = await callEtcd(direct, 'KV', 'Range', ['RangeRequest', { key: b(key) }], 'RangeResponse');
  const kvs = (response['kvs'] ?? []) as Array<{ value?: Buffer }>;
  const first = kvs[0];
  return first === undefined ? undefined : (first.value ?? Buffer.alloc(0)).toString('utf8');
}
