/**
 * Turns the configured policy (a file, or a document inline in the config) into a
 * compiled policy. Throws PolicyError (every problem, by path) or a read/parse error;
 * the caller decides whether that is fatal (start) or keeps the old policy (reload).
 */
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { Config } from '../config/types.js';
import { compilePolicy } from './compile.js';
import { PolicyError } from './policy-error.js';
import type { CompiledPolicy } from './types.js';

/** Reads, validates and compiles the policy named by the config. */
export function loadConfiguredPolicy(policy: Config['policy']): CompiledPolicy {
  if (policy.kind === 'inline') return compilePolicy(policy.document, JSON.stringify(policy.document));
  const text = readFileSync(policy.path, 'utf8');
  let document: unknown;
  try {
    document = parse(text);
  } catch (error: unknown) {
    throw new PolicyError([{ path: '', message: `${policy.path}: not valid YAML: ${error instanceof Error ? error.message : String(error)}` }]);
  }
  return compilePolicy(document, text);
}
