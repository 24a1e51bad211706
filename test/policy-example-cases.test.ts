/**
 * Every example policy under config/ ships with a cases file (X.yaml + X.cases.yaml), and
 * every case in it holds. Also proves each cases file exercises both outcomes.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { compilePolicyText } from '../src/policy/compile.js';
import { parsePolicyCases, runPolicyCases } from '../src/policy/test-cases.js';

const configDir = fileURLToPath(new URL('../config/', import.meta.url));

function casesFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) return casesFiles(path);
    return entry.name.endsWith('.cases.yaml') ? [path] : [];
  });
}

const files = casesFiles(configDir).sort();

describe('example policies', () => {
  it('include the dev policy and the five policies under config/policies/', () => {
    const names = files.map((f) => f.slice(configDir.length));
    expect(names).toEqual(
      expect.arrayContaining([
        'policy.dev.cases.yaml',
        'policies/kube-apiserver.cases.yaml',
        'policies/multi-tenant-cn.cases.yaml',
        'policies/multi-tenant-spiffe.cases.yaml',
        'policies/read-only-auditor.cases.yaml',
        'policies/backup-operator.cases.yaml',
      ]),
    );
  });

  it.each(files.map((f) => [f.slice(configDir.length), f]))('%s passes against its policy', (_name, file) => {
    const policy = compilePolicyText(readFileSync(file.replace(/\.cases\.yaml$/u, '.yaml'), 'utf8'));
    const document: unknown = parse(readFileSync(file, 'utf8'));
    const cases = parsePolicyCases(document);
    expect(cases.some((c) => c.expect === 'allow')).toBe(true);
    expect(cases.some((c) => c.expect === 'deny')).toBe(true);
    const result = runPolicyCases(policy, document);
    expect(result.failed).toEqual([]);
    expect(result.passed).toBe(cases.length);
  });
});
