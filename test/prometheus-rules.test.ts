/**
 * Proves that config/prometheus/etcdgate-rules.yaml is valid (`promtool check rules`),
 * that its unit tests pass (`promtool test rules`), and that those unit tests give every
 * alert a firing case; every alert also carries a severity and summary/description.
 * promtool comes from Debian's `prometheus` package; without it the promtool checks are
 * skipped locally but fail under CI.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { describe, expect, it } from 'vitest';
import { commandPresent, runningInCI } from './support/promtool.js';

const run = promisify(execFile);
const configDir = fileURLToPath(new URL('../config/prometheus/', import.meta.url));
const rulesFile = `${configDir}etcdgate-rules.yaml`;
const testsFile = `${configDir}etcdgate-rules.test.yaml`;

const promtoolPresent = commandPresent('promtool');
const inCI = runningInCI();

if (!promtoolPresent && !inCI) {
  console.warn('prometheus-rules: promtool not found (apt-get install prometheus); skipping the promtool checks');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function records(value: unknown): Record<string, unknown>[] {
  return Array.isArray(value) ? value.filter(isRecord) : [];
}

function alertRules(): Record<string, unknown>[] {
  const doc: unknown = parseYaml(readFileSync(rulesFile, 'utf8'));
  if (!isRecord(doc)) throw new Error('rules file is not a mapping');
  return records(doc['groups']).flatMap((group) => records(group['rules'])).filter((rule) => typeof rule['alert'] === 'string');
}

describe('etcdgate alert rules', () => {
  it('has promtool available under CI', () => {
    // Locally a missing promtool only skips; in CI it must be installed (.ci/run does).
    if (inCI) expect(promtoolPresent, 'promtool must be installed in CI (apt-get install prometheus)').toBe(true);
  });

  it.skipIf(!promtoolPresent)('passes promtool check rules', async () => {
    const { stdout } = await run('promtool', ['check', 'rules', rulesFile]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it.skipIf(!promtoolPresent)('passes its promtool unit tests', async () => {
    // promtool resolves rule_files relative to the test file's directory.
    const { stdout } = await run('promtool', ['test', 'rules', testsFile], { cwd: configDir });
    expect(stdout).toContain('SUCCESS');
  });

  it('defines the documented alerts in group etcdgate, each with severity and annotations', () => {
    const names = alertRules().map((rule) => rule['alert']);
    expect(names.sort()).toEqual(
      [
        'EtcdgateAuditSinkFailing',
        'EtcdgateCertificateExpiringSoon',
        'EtcdgateCertificateExpiryCritical',
        'EtcdgateDecryptionFailures',
        'EtcdgateDown',
        'EtcdgateEncryptionReloadFailed',
        'EtcdgateHighDenialRate',
        'EtcdgateHighLatencyP99',
        'EtcdgatePolicyReloadFailed',
        'EtcdgateUpstreamAllDown',
        'EtcdgateUpstreamDown',
      ].sort(),
    );
    for (const rule of alertRules()) {
      const labels = isRecord(rule['labels']) ? rule['labels'] : {};
      const annotations = isRecord(rule['annotations']) ? rule['annotations'] : {};
      expect(['warning', 'critical'], String(rule['alert'])).toContain(labels['severity']);
      expect(typeof annotations['summary'], String(rule['alert'])).toBe('string');
      expect(typeof annotations['description'], String(rule['alert'])).toBe('string');
    }
  });

  it('has a firing unit test for every alert', () => {
    const doc: unknown = parseYaml(readFileSync(testsFile, 'utf8'));
    if (!isRecord(doc)) throw new Error('rules test file is not a mapping');
    const fired = new Set<string>();
    for (const test of records(doc['tests'])) {
      for (const check of records(test['alert_rule_test'])) {
        if (typeof check['alertname'] === 'string' && records(check['exp_alerts']).length > 0) fired.add(check['alertname']);
      }
    }
    for (const rule of alertRules()) expect(fired.has(String(rule['alert'])), String(rule['alert'])).toBe(true);
  });
});
