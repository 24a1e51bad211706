/**
 * Policies for enforcement tests against a live gateway: the dev policy
 * (config/policy.dev.yaml) with one extra grant, and a policy file that a test rewrites
 * to make the gateway reload.
 */
import { readFileSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll } from 'vitest';
import { parse } from 'yaml';

/** A policy document: named roles and the bindings that grant them. */
export interface PolicyDocument {
  roles: Record<string, unknown>;
  bindings: unknown[];
}

/** Path of config/policy.dev.yaml, the policy most enforcement tests run under. */
export const DEV_POLICY_FILE = fileURLToPath(new URL('../../config/policy.dev.yaml', import.meta.url));

/** config/policy.dev.yaml as a document (read afresh on each call). */
export function devPolicy(): PolicyDocument {
  return parse(readFileSync(DEV_POLICY_FILE, 'utf8')) as PolicyDocument;
}

/** The dev policy plus role `role` with these key rules, bound to the client CN `cn`. */
export function devPolicyWith(role: string, keys: readonly unknown[], cn: string): PolicyDocument {
  const dev = devPolicy();
  return {
    roles: { ...dev.roles, [role]: { keys } },
    bindings: [...dev.bindings, { match: { cn }, roles: [role] }],
  };
}

/** A policy file in its own temp dir; `path` throws until beforeAll has created it. */
export interface PolicyFile {
  readonly path: string;
  /** Replaces the file in one step (write aside, then rename): the gateway, which also polls the file, never sees half of it. */
  write(text: string): Promise<void>;
}

/**
 * Registers hooks that create the file with `initialText()` in beforeAll and remove it
 * in afterAll. Call it before useGatewayStack so the file exists when the gateway starts.
 */
export function usePolicyFile(dirPrefix: string, initialText: () => string): PolicyFile {
  let dir: string | undefined;
  const file = (): string => {
    if (dir === undefined) throw new Error('policy file used before usePolicyFile\'s beforeAll created it');
    return path.join(dir, 'policy.yaml');
  };
  const write = async (text: string): Promise<void> => {
    const next = `${file()}.next`;
    await writeFile(next, text);
    await rename(next, file());
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), dirPrefix));
    await write(initialText());
  });

  afterAll(async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  });

  return {
    get path() {
      return file();
    },
    write,
  };
}
