/**
 * `match.source` in policy bindings: a certificate honoured only from the networks it
 * belongs to. Pure policy checks (allowed and refused source for each rule, IPv4 and
 * IPv6, IPv4-mapped peers, unknown source), validation errors with their paths, the
 * permission cache keyed by source, and the operator tools: `explain --source` and a
 * cases file's `source` field run through the built CLI.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { PolicyState } from '../src/proxy/policy-state.js';
import { compilePolicy } from '../src/policy/compile.js';
import { PolicyError } from '../src/policy/policy-error.js';
import { runPolicyCases } from '../src/policy/test-cases.js';
import { key, who } from './support/policy.js';

const DOCUMENT = {
  roles: {
    apiserver: { keys: [{ prefix: '/registry/', access: 'readwrite' }] },
    reader: { keys: [{ prefix: '/registry/', access: 'read' }] },
  },
  bindings: [
    { match: { cn: 'kube-apiserver', source: ['10.0.0.0/24', '2001:db8:c0::/48'] }, roles: ['apiserver'] },
    { match: { cn: 'kube-apiserver' }, roles: ['reader'] },
    { match: { o: 'monitoring', source: '192.168.7.9' }, roles: ['reader'] },
  ],
};
const policy = compilePolicy(DOCUMENT);
const write = [key('write', '/registry/pods/x')];
const read = [key('read', '/registry/pods/x')];
const apiserver = who({ cn: 'kube-apiserver', fingerprint: 'aa' });

describe('bindings with match.source', () => {
  it('grant from inside the networks only (IPv4, IPv6, IPv4-mapped); other bindings still apply outside', () => {
    for (const inside of ['10.0.0.7', '2001:db8:c0:1::5', '::ffff:10.0.0.200']) {
      expect(policy.permissionsFor(apiserver, inside).check(write), inside).toMatchObject({ allowed: true, role: 'apiserver' });
    }
    for (const outside of ['10.0.1.7', '2001:db8:c1::5', '192.168.7.9']) {
      expect(policy.permissionsFor(apiserver, outside).check(write), outside).toMatchObject({ allowed: false });
      expect(policy.permissionsFor(apiserver, outside).check(read), outside).toMatchObject({ allowed: true, role: 'reader' });
    }
  });

  it('never match without a source address (fail closed)', () => {
    expect(policy.permissionsFor(apiserver).check(write)).toMatchObject({ allowed: false });
    expect(policy.permissionsFor(who({ cn: 'x', o: ['monitoring'] })).check(read)).toMatchObject({ allowed: false, reason: 'no binding' });
    expect(policy.permissionsFor(who({ cn: 'x', o: ['monitoring'] }), '192.168.7.9').check(read)).toMatchObject({ allowed: true });
  });

  it('the permission cache keys on the source when the policy uses it', () => {
    const state = new PolicyState(policy);
    expect(state.permissionsFor(apiserver, '10.0.0.7').check(write).allowed).toBe(true);
    expect(state.permissionsFor(apiserver, '10.9.9.9').check(write).allowed).toBe(false);
    expect(state.permissionsFor(apiserver, '10.0.0.7').check(write).allowed).toBe(true);
  });

  it('bad CIDRs and a source-only match are policy errors with their paths', () => {
    const bad = {
      roles: { r: {} },
      bindings: [
        { match: { cn: 'a', source: ['10.0.0.1/8', 'nope', 7] }, roles: ['r'] },
        { match: { source: ['10.0.0.0/8'] }, roles: ['r'] },
        { match: { cn: 'b', source: [] }, roles: ['r'] },
      ],
    };
    let issues: { path: string; message: string }[] = [];
    try {
      compilePolicy(bad);
    } catch (error: unknown) {
      if (error instanceof PolicyError) issues = [...error.issues];
    }
    const paths = issues.map((i) => i.path);
    expect(paths).toEqual(expect.arrayContaining(['bindings[0].match.source[0]', 'bindings[0].match.source[1]', 'bindings[0].match.source[2]', 'bindings[1].match', 'bindings[2].match.source']));
    expect(issues.find((i) => i.path === 'bindings[0].match.source[0]')?.message).toContain('10.0.0.0/8');
  });

  it('cases carry a source; a bad one is reported', () => {
    const result = runPolicyCases(policy, {
      cases: [
        { name: 'apiserver writes from the control plane', identity: { cn: 'kube-apiserver' }, source: '10.0.0.7', request: { access: 'write', key: '/registry/x' }, expect: 'allow' },
        { name: 'apiserver only reads from elsewhere', identity: { cn: 'kube-apiserver' }, source: '10.0.9.7', request: { access: 'write', key: '/registry/x' }, expect: 'deny' },
      ],
    });
    expect(result).toMatchObject({ passed: 2, failed: [] });
    expect(() => runPolicyCases(policy, { cases: [{ name: 'x', identity: { cn: 'a' }, source: '10.0.0.0/8', request: { access: 'read', key: '/a' }, expect: 'deny' }] })).toThrow(/cases\[0\]\.source/u);
  });
});

describe('the CLI takes a source', () => {
  const root = fileURLToPath(new URL('..', import.meta.url));
  const cli = path.join(root, 'dist/src/main.js');
  const run = (args: string[]): Promise<{ code: number; stdout: string; stderr: string }> =>
    new Promise((resolve) => {
      execFile(process.execPath, [cli, ...args], { cwd: root }, (error, stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
      });
    });
  const dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-source-cli-'));
  const policyFile = path.join(dir, 'policy.yaml');
  writeFileSync(policyFile, stringify(DOCUMENT));
  const configFile = path.join(dir, 'etcdgate.yaml');
  // explain needs only the policy; the TLS files may be any readable file.
  writeFileSync(
    configFile,
    `server: { listen: 127.0.0.1:2379, advertiseClientUrls: [https://127.0.0.1:2379], tls: { cert: ${policyFile}, key: ${policyFile}, clientCA: ${policyFile} } }\n` +
      `upstream: { endpoints: [https://127.0.0.1:12379], tls: { ca: ${policyFile} } }\npolicy: ${policyFile}\n`,
  );

  it('explain --source: ALLOW from the control plane, DENY from elsewhere and without a source', async () => {
    const base = ['explain', '--config', configFile, '--cn', 'kube-apiserver', '--method', 'Put', '--key', '/registry/pods/x'];
    const inside = await run([...base, '--source', '10.0.0.7']);
    expect(inside.code, inside.stderr).toBe(0);
    expect(inside.stdout).toMatch(/source: 10\.0\.0\.7/u);
    expect(inside.stdout).toMatch(/decision: ALLOW/u);
    const outside = await run([...base, '--source', '10.0.9.7']);
    expect(outside.code).toBe(3);
    const none = await run(base);
    expect(none.code).toBe(3);
    expect(none.stdout).toMatch(/source: not given/u);
    const bad = await run([...base, '--source', 'nope']);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/--source must be an IP address/u);
  });

  it('test-policy runs cases with a source', async () => {
    const cases = path.join(dir, 'policy.cases.yaml');
    writeFileSync(
      cases,
      stringify({
        cases: [
          { name: 'writes from the control plane', identity: { cn: 'kube-apiserver' }, source: '10.0.0.7', request: { access: 'write', key: '/registry/x' }, expect: 'allow' },
          { name: 'claimed: writes from anywhere', identity: { cn: 'kube-apiserver' }, source: '172.16.0.1', request: { access: 'write', key: '/registry/x' }, expect: 'allow' },
        ],
      }),
    );
    const result = await run(['test-policy', policyFile, cases]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL claimed: writes from anywhere/u);
    expect(result.stdout).toMatch(/policy cases: 1 passed, 1 failed/u);
  });
});
