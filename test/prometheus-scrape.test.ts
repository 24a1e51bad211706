/**
 * Proves end to end that a real Prometheus (Debian's `prometheus` binary) scrapes a live
 * etcdgate in front of a real etcd: Puts made through etcdgate show up in etcdgate's
 * request counter in Prometheus's query API, and the counter moves with more traffic. The same Prometheus also loads
 * the shipped alert rules (all healthy) and accepts every dashboard query as valid
 * PromQL. Skipped locally without the binary; under CI a missing binary fails.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from './support/ports.js';
import { commandPresent, runningInCI } from './support/promtool.js';
import { callEtcd, rawClient } from './support/raw-client.js';
import { useGatewayStack } from './support/stack.js';

const prometheusPresent = commandPresent('prometheus');
const inCI = runningInCI();
const rulesFile = fileURLToPath(new URL('../config/prometheus/etcdgate-rules.yaml', import.meta.url));
const dashboardFile = fileURLToPath(new URL('../config/grafana/etcdgate-dashboard.json', import.meta.url));

if (!prometheusPresent && !inCI) {
  console.warn('prometheus-scrape: prometheus binary not found (apt-get install prometheus); skipping');
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls `probe` until it returns a value, failing with `what` after a bounded wait. */
async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, boundMs = 60_000): Promise<T> {
  const deadline = Date.now() + boundMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err: unknown) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`, { cause: lastError });
    await sleep(250);
  }
}

interface ApiReply {
  readonly status: string;
  readonly data?: unknown;
  readonly error?: string;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

describe.skipIf(!prometheusPresent && !inCI)('a real Prometheus scraping a live etcdgate', () => {
  const stack = useGatewayStack();
  let dir: string;
  let prometheus: ChildProcess | undefined;
  let prometheusLog = '';
  let base = '';

  async function api(endpoint: string, query?: string): Promise<ApiReply> {
    const url = new URL(endpoint, base);
    if (query !== undefined) url.searchParams.set('query', query);
    const res = await fetch(url);
    const body: unknown = await res.json();
    if (!isRecord(body) || typeof body['status'] !== 'string') throw new Error(`unexpected API reply from ${endpoint}`);
    return body as unknown as ApiReply;
  }

  /** The value of the single series an instant query returns, or undefined when there is none yet. */
  async function instantValue(query: string): Promise<number | undefined> {
    const reply = await api('/api/v1/query', query);
    if (reply.status !== 'success' || !isRecord(reply.data)) throw new Error(`query failed: ${reply.error ?? ''}`);
    const result = reply.data['result'];
    if (!Array.isArray(result) || result.length === 0) return undefined;
    if (result.length > 1) throw new Error(`expected one series for ${query}, got ${result.length}`);
    const first: unknown = result[0];
    const value = isRecord(first) && Array.isArray(first['value']) ? first['value'][1] : undefined;
    return typeof value === 'string' ? Number(value) : undefined;
  }

  beforeAll(async () => {
    expect(prometheusPresent, 'the prometheus binary must be installed in CI (apt-get install prometheus)').toBe(true);
    dir = mkdtempSync(path.join(tmpdir(), 'etcdgate-prometheus-'));
    const configFile = path.join(dir, 'prometheus.yml');
    writeFileSync(
      configFile,
      [
        'global:',
        '  scrape_interval: 1s',
        '  evaluation_interval: 1s',
        'rule_files:',
        `  - ${JSON.stringify(rulesFile)}`,
        'scrape_configs:',
        '  - job_name: etcdgate',
        '    static_configs:',
        `      - targets: ["127.0.0.1:${stack.gate.gateway.adminPort}"]`,
        '',
      ].join('\n'),
    );

    // The web port is probed, not bound by us; if another process takes it first,
    // Prometheus exits and we try another one.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      base = `http://127.0.0.1:${port}`;
      prometheusLog = '';
      const child = spawn(
        'prometheus',
        [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${path.join(dir, `data-${attempt}`)}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] },
      );
      child.stderr?.on('data', (chunk: Buffer) => {
        prometheusLog += chunk.toString('utf8');
      });
      const exited = new Promise<'exited'>((resolve) => child.once('exit', () => resolve('exited')));
      prometheus = child;
      const ready = waitFor('Prometheus /-/ready', async () => ((await fetch(`${base}/-/ready`)).ok ? ('ready' as const) : undefined));
      const outcome = await Promise.race([ready, exited]);
      if (outcome === 'ready') break;
      ready.catch(() => undefined);
      prometheus = undefined;
      if (attempt >= 3) throw new Error(`prometheus did not start:\n${prometheusLog}`);
    }
  });

  afterAll(async () => {
    const child = prometheus;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGTERM');
      const killTimer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killTimer);
    }
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
  });

  it("sees etcdgate's request counter move with traffic through etcdgate", async () => {
    const query = 'etcdgate_requests_total{job="etcdgate", service="etcdserverpb.KV", method="Put", decision="allow", code="OK"}';
    const client = rawClient(stack.gate.endpoint, stack.pki, 'root');
    const put = (key: string): Promise<unknown> => callEtcd(client, 'KV', 'Put', ['PutRequest', { key: Buffer.from(key), value: Buffer.from('v') }], 'PutResponse');
    try {
      await put('/scraped/1');
      const first = await waitFor('the first scrape of the counter', async () => {
        const value = await instantValue(query);
        return value === 1 ? value : undefined;
      });
      expect(first).toBe(1);

      await put('/scraped/2');
      await put('/scraped/3');
      const moved = await waitFor('the counter to move to 3', async () => {
        const value = await instantValue(query);
        return value === 3 ? value : undefined;
      });
      expect(moved).toBe(3);
      expect(await instantValue('up{job="etcdgate"}')).toBe(1);
      expect(await instantValue(`etcdgate_build_info{version="${stack.gate.gateway.version}"}`)).toBe(1);
      expect(await instantValue('sum(etcdgate_upstream_up{job="etcdgate"})')).toBe(1);
    } finally {
      client.close();
    }
  });

  it('loads the shipped alert rules and evaluates all of them without error', async () => {
    const rules = await waitFor('every rule to be evaluated once', async () => {
      const reply = await api('/api/v1/rules');
      const groups = isRecord(reply.data) && Array.isArray(reply.data['groups']) ? reply.data['groups'] : [];
      const all = groups.flatMap((group: unknown) => (isRecord(group) && Array.isArray(group['rules']) ? group['rules'] : []));
      const evaluated = all.filter((rule: unknown) => isRecord(rule) && rule['health'] !== 'unknown');
      return all.length > 0 && evaluated.length === all.length ? all : undefined;
    });
    // Every rule of the shipped file, however many it has.
    const shipped = (readFileSync(rulesFile, 'utf8').match(/^\s+- alert: /gmu) ?? []).length;
    expect(shipped).toBeGreaterThanOrEqual(14);
    expect(rules).toHaveLength(shipped);
    for (const rule of rules) {
      expect(isRecord(rule) ? [rule['name'], rule['health'], rule['lastError'] ?? ''] : rule).toEqual([
        expect.any(String),
        'ok',
        '',
      ]);
    }
  });

  it('accepts every dashboard query as valid PromQL', async () => {
    const exprs = [...readFileSync(dashboardFile, 'utf8').matchAll(/"expr": ("(?:[^"\\]|\\.)*")/g)].map(
      (match) => JSON.parse(match[1] ?? '""') as string,
    );
    expect(exprs.length).toBeGreaterThanOrEqual(15);
    for (const expr of exprs) {
      // Grafana's variables, filled in the way Grafana would for "All" and a 1s scrape.
      const query = expr.replaceAll('$__rate_interval', '1m').replaceAll('$job', '.*').replaceAll('$instance', '.*');
      const reply = await api('/api/v1/query', query);
      expect([reply.status, reply.error ?? ''], expr).toEqual(['success', '']);
    }
  });
});
