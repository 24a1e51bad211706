#!/usr/bin/env node
/**
 * The command line, and the only module that touches `process`: argv, signals, exit.
 *
 *   etcdgate --config FILE                 run the gateway
 *   etcdgate check-config FILE             validate a config, its policy and its TLS material, exit 2 on problems
 *   etcdgate explain --config FILE ...     show the decision and rule for one request (exit 0 allow, 3 deny)
 *   etcdgate test-policy POLICY CASES      run policy test cases, exit non-zero on a mismatch
 *   etcdgate encryption status|rewrite ... encryption at rest: how values are held; re-encrypt a prefix
 *   etcdgate backup now|list|verify ...    take, list or check backups (src/cli/backup-commands.ts)
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { parse } from 'yaml';
import { startGateway, type Gateway } from './app.js';
import { ENCRYPTION_USAGE, encryptionCommand } from './cli/encryption.js';
import { EXPLAIN_USAGE, explainCommand } from './cli/explain-command.js';
import { UsageError } from './cli/usage-error.js';
import { BACKUP_USAGE, backupCommand } from './cli/backup-commands.js';
import { ConfigError, loadConfig } from './config/load.js';
import { createLogger, type Logger } from './observability/logger.js';
import { logProcessWarnings } from './observability/process-warnings.js';
import { compilePolicyText } from './policy/compile.js';
import { loadConfiguredPolicy } from './config/policy-file.js';
import { PolicyError } from './policy/policy-error.js';
import { runPolicyCases } from './policy/test-cases.js';
import { assertTlsMaterial } from './tls/material-check.js';
import { VERSION } from './version.js';

const USAGE = `etcdgate ${VERSION}: mTLS authenticating, authorizing and auditing proxy for etcd

Usage:
  etcdgate --config FILE
  etcdgate check-config [--config] FILE
  ${EXPLAIN_USAGE.replace(/\n/gu, '\n  ')}
  etcdgate test-policy POLICY.yaml CASES.yaml
${ENCRYPTION_USAGE}
${BACKUP_USAGE}
  etcdgate --version

Exit status: 2 for an invalid config, policy or command line (every problem named by its
field path), 1 for other failures; explain: 0 allowed, 3 denied; test-policy: 1 on a
failed case.`;

/** The logger process warnings go to; the configured one once a config is loaded. */
let warningLogger: Logger = createLogger('warn');

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

/** `check-config FILE` or `check-config --config FILE`: the config, its policy and every piece of TLS material it names. */
function checkConfig(argv: string[]): void {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { config: { type: 'string', short: 'c' } }, allowPositionals: true, strict: true });
  } catch (error: unknown) {
    fail(new UsageError(`${error instanceof Error ? error.message : String(error)}\n${USAGE}`));
  }
  const files = [...(parsed.values.config === undefined ? [] : [parsed.values.config]), ...parsed.positionals];
  if (files.length !== 1) fail(new UsageError(`check-config needs one config file (check-config FILE or check-config --config FILE)`));
  const file = files[0] ?? '';
  const config = loadConfig(file);
  const policy = loadConfiguredPolicy(config.policy);
  // The start runs the same check (src/app.ts), so what passes here loads there.
  assertTlsMaterial(config);
  const resources = config.encryption?.resources.length;
  const encryption = resources === undefined ? '' : `; encryption: ${resources} resource${resources === 1 ? '' : 's'}, key files checked`;
  process.stdout.write(`${file}: OK (policy ${policy.version}, ${policy.ruleCount} rules${encryption})\n`);
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
  const logger = createLogger(config.log.level);
  warningLogger = logger;
  const gateway: Gateway = await startGateway(config, { logger });
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
  // Node prints warnings (deprecations...) as plain text; everything etcdgate writes to stderr is JSON.
  logProcessWarnings(process, () => warningLogger);
  const [command, ...rest] = argv;
  switch (command) {
    case 'check-config':
      return checkConfig(rest);
    case 'explain':
      process.exitCode = explainCommand(rest, (text) => process.stdout.write(text));
      return;
    case 'test-policy':
      return testPolicy(rest[0], rest[1]);
    case 'encryption':
      process.exitCode = await encryptionCommand(rest, { stdout: process.stdout, stderr: process.stderr });
      return;
    case 'backup':
      // Exit at once: an S3 client's idle keep-alive sockets must not hold the command open.
      return process.exit(await backupCommand(rest, { stdout: process.stdout, stderr: process.stderr }));
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
