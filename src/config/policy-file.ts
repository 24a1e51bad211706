/**
 * Turns the configured policy (a file, or a document inline in the config) into a
 * compiled policy. Throws PolicyError (every problem, by path) or a read error; the
 * caller decides whether that is fatal (start) or keeps the old policy (reload).
 */
import { readFileSync } from 'node:fs';
import type { Config } from './types.js';
import { compilePolicy, compilePolicyText } from '../policy/compile.js';
import type { CompiledPolicy } from '../policy/types.js';

/** Reads, validates and compiles the policy named by the config. */
export function loadConfiguredPolicy(policy: Config['policy']): CompiledPolicy {
  if (policy.kind === 'inline') return compilePolicy(policy.document, JSON.stringify(policy.document));
  return compilePolicyText(readFileSync(policy.path, 'utf8'));
}
