/**
 * The operator commands of the built CLI (dist/, made by `npm test`'s pretest build):
 * check-config lists every problem by field path and exits non-zero; explain prints the
 * decision and the rule behind it; test-policy runs case files and fails on a mismatch.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const cli = path.join(root, 'dist/src/main.js');

function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: root }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : 1, stdout, stderr });
    });
  });
}

describe('etcdgate CLI', () => {
  it('check-config accepts the example config and reports every problem of a bad one', async () => {
    // The example names the dev PKI in certs-dev/out/ (git-ignored; `npm run certs` makes it).
    if (!existsSync(path.join(root, 'certs-dev/out/ca.crt'))) execFileSync('bash', ['certs-dev/generate.sh', 'certs-dev/out'], { cwd: root });
    const good = await run(['check-config', 'config/etcdgate.example.yaml']);
    expect(good.code, good.stderr).toBe(0);
    expect(good.stdout).toMatch(/OK \(policy [0-9a-f]{12}, \d+ rules\)/u);

    const dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-cli-'));
    const bad = path.join(dir, 'bad.yaml');
    writeFileSync(bad, 'server:\n  listen: nope\nupstream:\n  endpoints: [http://etcd:2379]\npolicy: 3\nbogus: 1\n');
    const result = await run(['check-config', bad]);
    expect(result.code).toBe(2);
    for (const path of ['bogus', 'server.listen', 'server.tls', 'upstream.endpoints[0]', 'upstream.tls', 'policy']) {
      expect(result.stderr).toContain(`\n  ${path}: `);
    }
  });

  it('explain allows a tenant its own prefix and denies another tenant’s, naming the rule', async () => {
    const config = path.join(root, 'config/policies/multi-tenant-cn.yaml');
    const dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-cli-'));
    const file = path.join(dir, 'etcdgate.yaml');
    // explain needs only the policy; the TLS files may be any readable file.
    writeFileSync(
      file,
      `server: { listen: 127.0.0.1:2379, advertiseClientUrls: [https://127.0.0.1:2379], tls: { cert: ${config}, key: ${config}, clientCA: ${config} } }\n` +
        `upstream: { endpoints: [https://127.0.0.1:12379], tls: { ca: ${config} } }\npolicy: ${config}\n`,
    );
    const allowed = await run(['explain', '--config', file, '--cn', 'tenant-a', '--method', 'Put', '--key', '/tenants/tenant-a/x']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/decision: ALLOW/u);
    const denied = await run(['explain', '--config', file, '--cn', 'tenant-a', '--method', 'Range', '--key', '/tenants/', '--range-end', '/tenants0']);
    expect(denied.code).toBe(3);
    expect(denied.stdout).toMatch(/decision: DENY/u);
  });

  it('explain works from a policy file alone, refuses what a method does not take, and --help states the exit statuses', async () => {
    const policy = path.join(root, 'config/policies/multi-tenant-cn.yaml');
    const allowed = await run(['explain', '--policy', policy, '--cn', 'tenant-a', '--method', 'Range', '--key', '/tenants/tenant-a/', '--prefix']);
    expect(allowed.code, allowed.stderr).toBe(0);
    expect(allowed.stdout).toMatch(/request 1: read prefix \/tenants\/tenant-a\/ -> ALLOW/u);
    const denied = await run(['explain', '--policy', policy, '--cn', 'tenant-a', '--method', 'Txn', '--txn', 'success: put /tenants/tenant-a/x; failure: delete /tenants/tenant-b/x']);
    expect(denied.code).toBe(3);
    expect(denied.stdout).toMatch(/write key \/tenants\/tenant-b\/x -> DENY/u);
    const wrongOption = await run(['explain', '--policy', policy, '--cn', 'tenant-a', '--method', 'LeaseGrant', '--key', '/x']);
    expect(wrongOption.code).toBe(2);
    expect(wrongOption.stderr).toContain('LeaseGrant does not take --key');
    const both = await run(['explain', '--policy', policy, '--config', policy, '--cn', 'a', '--method', 'Status']);
    expect(both.code).toBe(2);
    const help = await run(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('Exit status: 0 allowed, 3 denied, 2 bad arguments');
    expect(help.stdout).toContain('check-config [--config] FILE');
  });

  it('test-policy passes every shipped example and fails on a wrong expectation', async () => {
    for (const name of ['policy.dev', 'policies/kube-apiserver', 'policies/multi-tenant-cn', 'policies/multi-tenant-spiffe', 'policies/read-only-auditor', 'policies/backup-operator']) {
      const result = await run(['test-policy', `config/${name}.yaml`, `config/${name}.cases.yaml`]);
      expect(result.code, `${name}: ${result.stdout}`).toBe(0);
      expect(result.stdout).toMatch(/policy cases: \d+ passed, 0 failed/u);
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-cli-'));
    const cases = path.join(dir, 'wrong.cases.yaml');
    writeFileSync(cases, 'cases:\n  - name: tenant-a may not write tenant-b (but we claim allow)\n    identity: { cn: tenant-a }\n    request: { access: write, key: /tenants/tenant-b/x }\n    expect: allow\n');
    const result = await run(['test-policy', 'config/policies/multi-tenant-cn.yaml', cases]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/FAIL tenant-a may not write tenant-b/u);
  });
});
