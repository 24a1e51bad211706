/**
 * The deployment files agree with etcdgate and with each other (no docker or cluster
 * here, so this is what can be checked without one): the Kubernetes manifest's embedded
 * config is valid for etcdgate apart from the certificate files that only exist in the
 * pod, listens on all interfaces, and its policy compiles; the probes hit /readyz and
 * /healthz on the admin port the config listens on; the pod runs as the Dockerfile's
 * non-root user with a read-only root; Service and ServiceMonitor select the pods; the
 * Dockerfile is on a maintained Node LTS with a /readyz HEALTHCHECK; the systemd unit
 * passes `systemd-analyze verify`.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { ConfigError, loadConfigText } from '../src/config/load.js';
import { compilePolicyText } from '../src/policy/compile.js';
import { commandPresent, runningInCI } from './support/promtool.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const read = (file: string): string => readFileSync(`${root}${file}`, 'utf8');
const run = promisify(execFile);

type Doc = Record<string, unknown>;
const isDoc = (value: unknown): value is Doc => typeof value === 'object' && value !== null && !Array.isArray(value);
function at(doc: unknown, ...path: (string | number)[]): unknown {
  let node = doc;
  for (const step of path) node = Array.isArray(node) ? node[Number(step)] : isDoc(node) ? node[String(step)] : undefined;
  return node;
}

const manifests = parseAllDocuments(read('deploy/kubernetes/etcdgate.yaml')).map((d) => d.toJS() as Doc);
const byKind = (kind: string): Doc => {
  const found = manifests.find((m) => m['kind'] === kind);
  if (found === undefined) throw new Error(`no ${kind} in the manifest`);
  return found;
};

describe('Kubernetes manifest', () => {
  const configText = String(at(byKind('ConfigMap'), 'data', 'etcdgate.yaml'));

  it('has a Deployment, a Service and a ServiceMonitor (and its ConfigMap and PodDisruptionBudget)', () => {
    expect(manifests.map((m) => m['kind']).sort()).toEqual(['ConfigMap', 'Deployment', 'PodDisruptionBudget', 'Service', 'ServiceMonitor']);
  });

  it('embeds a config etcdgate accepts but for the certificate files, listening on all interfaces', () => {
    let issues: readonly { path: string; message: string }[] = [];
    try {
      loadConfigText(configText, 'etcdgate.yaml', '/etc/etcdgate');
    } catch (error: unknown) {
      if (!(error instanceof ConfigError)) throw error;
      issues = error.issues;
    }
    // Only the files mounted in the pod are missing here.
    for (const issue of issues) expect(issue.message, issue.path).toMatch(/^file does not exist: \/etc\/etcdgate\//u);
    expect(issues.length).toBeGreaterThan(0);
    const doc = parseAllDocuments(configText)[0]?.toJS() as Doc;
    expect(at(doc, 'server', 'listen')).toMatch(/^0\.0\.0\.0:/u);
    expect(at(doc, 'admin', 'listen')).toBe('0.0.0.0:9091');
    expect(() => compilePolicyText(String(at(byKind('ConfigMap'), 'data', 'policy.yaml')))).not.toThrow();
  });

  it('probes /readyz and /healthz on the admin port, as the Dockerfile’s non-root user with a read-only root', () => {
    const pod = at(byKind('Deployment'), 'spec', 'template', 'spec');
    const container = at(pod, 'containers', 0);
    const ports = at(container, 'ports') as { name: string; containerPort: number }[];
    expect(ports.find((p) => p.name === 'metrics')?.containerPort).toBe(9091);
    expect(at(container, 'readinessProbe', 'httpGet')).toEqual({ path: '/readyz', port: 'metrics' });
    expect(at(container, 'livenessProbe', 'httpGet')).toEqual({ path: '/healthz', port: 'metrics' });
    expect(at(pod, 'securityContext', 'runAsNonRoot')).toBe(true);
    const uid = at(pod, 'securityContext', 'runAsUser');
    expect(read('Dockerfile')).toMatch(new RegExp(`^USER ${String(uid)}:`, 'mu'));
    expect(at(container, 'securityContext')).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    const labels = at(byKind('Deployment'), 'spec', 'template', 'metadata', 'labels');
    expect(at(byKind('Service'), 'spec', 'selector')).toEqual(labels);
    expect(at(byKind('ServiceMonitor'), 'spec', 'selector', 'matchLabels')).toEqual(at(byKind('Service'), 'metadata', 'labels'));
    expect(at(byKind('ServiceMonitor'), 'spec', 'endpoints', 0, 'port')).toBe('metrics');
  });
});

describe('Dockerfile', () => {
  const dockerfile = read('Dockerfile');

  it('builds on a maintained Node LTS (22 or later), runs as non-root and checks /readyz', () => {
    const major = Number(/^ARG NODE_VERSION=(\d+)$/mu.exec(dockerfile)?.[1]);
    expect(major).toBeGreaterThanOrEqual(22);
    expect(major % 2).toBe(0);
    for (const from of dockerfile.match(/^FROM .*$/gmu) ?? []) expect(from).toMatch(/^FROM node:\$\{NODE_VERSION\}-/u);
    expect(dockerfile).toMatch(/^USER 10001:10001$/mu);
    expect(dockerfile).toMatch(/^HEALTHCHECK .*\n\s+CMD .*ETCDGATE_READYZ_URL/mu);
    expect(dockerfile).toMatch(/ETCDGATE_READYZ_URL=http:\/\/127\.0\.0\.1:9091\/readyz/u);
    expect(dockerfile).toMatch(/^EXPOSE 2379 9091$/mu);
  });
});

const analyze = commandPresent('systemd-analyze');
describe('systemd unit', () => {
  it('has systemd-analyze under CI', () => {
    if (runningInCI()) expect(analyze, 'systemd-analyze must be installed in CI (Debian package systemd)').toBe(true);
  });

  it.skipIf(!analyze)('passes systemd-analyze verify and is sandboxed', async () => {
    const unit = `${root}deploy/systemd/etcdgate.service`;
    const { stdout, stderr } = await run('systemd-analyze', ['verify', unit]);
    expect(`${stdout}${stderr}`).toBe('');
    const text = read('deploy/systemd/etcdgate.service');
    for (const line of ['NoNewPrivileges=yes', 'ProtectSystem=strict', 'ProtectHome=yes', 'PrivateTmp=yes', 'CapabilityBoundingSet=', 'RestartPreventExitStatus=2']) {
      expect(text).toContain(`\n${line}\n`);
    }
    expect(text).not.toMatch(/^User=root$/mu);
  });
});
