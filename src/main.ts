#!/usr/bin/env node
/**
 * The command line, and the only module that touches `process`: argv, signals, exit.
 *
 *   etcdgate --config FILE                 run the gateway
 *   etcdgate check-config FILE             validate a config and its policy, exit non-zero on problems
 *   etcdgate explain --config FILE ...     show the decision and rule for one request
 *   etcdgate test-policy POLICY CASES      run policy test cases, exit non-zero on a mismatch
 *   etcdgate encryption status|rewrite ... encryption at rest: how values are held; re-encrypt a prefix
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { startGateway, type Gateway } from './app.js';
import { ENCRYPTION_USAGE, encryptionCommand, UsageError } from './cli/encryption.js';
import { explainAccesses, explainIdentity } from './cli/explain-request.js';
import { ConfigError, loadConfig } from './config/load.js';
import { compilePolicyText } from './policy/compile.js';
import { explain } from './policy/explain.js';
import { addressBits } from './network/cidr.js';
import { loadConfiguredPolicy } from './policy/load-file.js';
import { PolicyError } from './policy/policy-error.js';
import { runPolicyCases } from './policy/test-cases.js';
import { VERSION } from './version.js';

const USAGE = `etcdgate ${VERSION}: mTLS authenticating, authorizing and auditing proxy for etcd

Usage:
  etcdgate --config FILE
  etcdgate check-config FILE
  etcdgate explain --config FILE (--cert CLIENT.pem | --cn NAME [--o ORG] [--ou UNIT] [--dns NAME] [--uri URI])
                   [--source ADDRESS] --method METHOD [--key KEY] [--range-end END]
  etcdgate test-policy POLICY.yaml CASES.yaml
${ENCRYPTION_USAGE}
  etcdgate --version`;

/** Prints a startup problem and exits: 2 for invalid input, 1 otherwise. */
function fail(error: unknown): never {
  if (error instanceof ConfigError) {
    const count = error.issues.length;
    process.stderr.write(`etcdgate: ${error.source}: invalid configuration (${count} problem${count === 1 ? '' : 's'}):\n${error.message.replace(/^/gmu, '  ')}\n`);
    process.exit(2);
  }
  if (error instanceof PolicyError || error instanceof UsageError) {
    process.stderr.write(`etcdgate: ${error.message}\n`);
    process.exit(2);
  }
  process.stderr.write(`etcdgate: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
}

function checkConfig(file: string | undefined): void {
  if (file === undefined) fail(new Error('check-config needs a config file'));
  const config = loadConfig(file);
  const policy = loadConfiguredPolicy(config.policy);
  const resources = config.encryption?.resources.length;
  const encryption = resources === undefined ? '' : `; encryption: ${resources} resource${resources === 1 ? '' : 's'}, key files checked`;
  process.stdout.write(`${file}: OK (policy ${policy.version}, ${policy.ruleCount} rules${encryption})\n`);
}

function explainCommand(argv: string[]): void {
  const { values } = parseArgs({
    args: argv,
    options: {
      config: { type: 'string' },
      cert: { type: 'string' },
      cn: { type: 'string' },
      o: { type: 'string', multiple: true, default: [] },
      ou: { type: 'string', multiple: true, default: [] },
      dns: { type: 'string', multiple: true, default: [] },
      uri: { type: 'string', multiple: true, default: [] },
      method: { type: 'string' },
      key: { type: 'string' },
      'range-end': { type: 'string' },
      source: { type: 'string' },
    },
  });
  if (values.config === undefined || values.method === undefined) fail(new Error(`explain needs --config and --method\n${USAGE}`));
  const args = {
    o: values.o,
    ou: values.ou,
    dns: values.dns,
    uri: values.uri,
    method: values.method,
    ...(values.cert === undefined ? {} : { cert: values.cert }),
    ...(values.cn === undefined ? {} : { cn: values.cn }),
    ...(values.key === undefined ? {} : { key: values.key }),
    ...(values['range-end'] === undefined ? {} : { rangeEnd: values['range-end'] }),
  };
  const policy = loadConfiguredPolicy(loadConfig(values.config).policy);
  if (values.source !== undefined && addressBits(values.source) === undefined) fail(new Error(`--source must be an IP address, got ${values.source}`));
  const result = explain(policy, explainIdentity(args), explainAccesses(args), values.source);
  process.stdout.write(`${result.lines.join('\n')}\n`);
  process.exitCode = result.decision.allowed ? 0 : 3;
}

function testPolicy(policyFile: string | undefined, casesFile: string | undefined): void {
  if (policyFile === undefined || casesFile === undefined) fail(new Error('test-policy needs POLICY and CASES files'));
  const policy = compilePolicyText(readFileSync(policyFile, 'utf8'));
  const result = runPolicyCases(policy, parse(readFileSync(casesFile, 'utf8')));
  for (const failure of result.failed) {
    process.stdout.write(`FAIL ${failure.name}: expected ${failure.expected}, got ${failure.got.allowed ? 'allow' : 'deny'} (${failure.got.reason})\n`);
  }
  process.stdout.write(`policy cases: ${result.passed} passed, ${result.failed.length} failed\n`);
  process.exitCode = result.failed.length === 0 ? 0 : 1;
}

async function run(configFile: string): Promise<void> {
  const config = loadConfig(configFile);
  const gateway: Gateway = await startGateway(config);
  let signals = 0;
  const shutdown = (): void => {
    signals += 1;
    if (signals > 1) process.exit(1);
    gateway.stop().then(
      () => process.exit(0),
      (error: unknown) => fail(error),
    );
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);
  process.on('SIGHUP', () => {
    gateway.reloadPolicy();
    gateway.reloadTls();
    gateway.reloadEncryption();
    gateway.reopenAudit();
  });
  process.on('SIGUSR1', () => gateway.reopenAudit());
}

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'check-config':
      return checkConfig(rest[0]);
    case 'explain':
      return explainCommand(rest);
    case 'test-policy':
      return testPolicy(rest[0], rest[1]);
    case 'encryption':
      process.exitCode = await encryptionCommand(rest, { stdout: process.stdout, stderr: process.stderr });
      return;
    case '--version':
      process.stdout.write(`${VERSION}\n`);
      return;
    case undefined:
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return;
    default: {
      const { values } = parseArgs({ args: command === 'run' ? rest : argv, options: { config: { type: 'string', short: 'c' } } });
      if (values.config === undefined) fail(new Error(`--config FILE is required\n${USAGE}`));
      return run(values.config);
    }
  }
}

main(process.argv.slice(2)).catch(fail);
