/**
 * Proves that the Grafana dashboard and the Prometheus alert rules only query metrics
 * etcdgate really exports: every metric name in every dashboard expression, variable
 * query and alert expression is present in the registry's exposition once every
 * Metrics method has been exercised. Also checks the dashboard is importable as a
 * template (a DS_PROMETHEUS input used by every panel) and covers the topics operators
 * need.
 */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { createPromMetrics } from '../src/observability/metrics.js';
import { exerciseEveryMetric } from './support/exercise-metrics.js';
import type { Exposition } from './support/prometheus-text.js';
import { exposedNames, parseExposition } from './support/prometheus-text.js';
import { familyName, metricNamesInPromQL, metricNamesInVariableQuery } from './support/promql-names.js';

const dashboardPath = fileURLToPath(new URL('../config/grafana/etcdgate-dashboard.json', import.meta.url));
const rulesPath = fileURLToPath(new URL('../config/prometheus/etcdgate-rules.yaml', import.meta.url));

/** Series Prometheus itself makes for every scrape target; not etcdgate's to export. */
const PROMETHEUS_SYNTHETIC = new Set(['up']);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Every `expr` string anywhere in the dashboard (panel targets, nested rows). */
function dashboardExprs(node: unknown, found: string[] = []): string[] {
  if (Array.isArray(node)) {
    for (const item of node) dashboardExprs(item, found);
  } else if (isRecord(node)) {
    for (const [key, value] of Object.entries(node)) {
      if (key === 'expr' && typeof value === 'string') found.push(value);
      else dashboardExprs(value, found);
    }
  }
  return found;
}

/** The query text of every templating variable of type "query". */
function variableQueries(dashboard: Record<string, unknown>): string[] {
  const templating = dashboard['templating'];
  const list = isRecord(templating) && Array.isArray(templating['list']) ? templating['list'] : [];
  const queries: string[] = [];
  for (const variable of list) {
    if (!isRecord(variable) || variable['type'] !== 'query') continue;
    const query = variable['query'];
    if (typeof query === 'string') queries.push(query);
    else if (isRecord(query) && typeof query['query'] === 'string') queries.push(query['query']);
  }
  return queries;
}

function ruleExprs(): { alert: string; expr: string }[] {
  const doc: unknown = parseYaml(readFileSync(rulesPath, 'utf8'));
  const out: { alert: string; expr: string }[] = [];
  const groups = isRecord(doc) && Array.isArray(doc['groups']) ? doc['groups'] : [];
  for (const group of groups) {
    const rules = isRecord(group) && Array.isArray(group['rules']) ? group['rules'] : [];
    for (const rule of rules) {
      if (isRecord(rule) && typeof rule['expr'] === 'string') {
        out.push({ alert: String(rule['alert'] ?? rule['record']), expr: rule['expr'] });
      }
    }
  }
  return out;
}

describe('metric name extraction', () => {
  it('finds metric names and skips functions, labels, ranges, keywords and variables', () => {
    expect(
      metricNamesInPromQL(
        'histogram_quantile(0.99, sum by (le, method) (rate(etcdgate_request_duration_seconds_bucket{method!~"Watch|x_y"}[$__rate_interval]))) > 1e3',
      ),
    ).toEqual(['etcdgate_request_duration_seconds_bucket']);
    expect(metricNamesInPromQL('sum(rate(a_total[5m])) / sum(rate(b_total[5m] offset 1h)) and on (instance) up == 0')).toEqual([
      'a_total',
      'b_total',
      'up',
    ]);
    expect(metricNamesInPromQL('(etcdgate_x{role="r"} - time()) / 86400 < bool 2')).toEqual(['etcdgate_x']);
    expect(metricNamesInVariableQuery('label_values(etcdgate_build_info{job=~"$job"}, instance)')).toEqual(['etcdgate_build_info']);
    expect(familyName('etcdgate_request_duration_seconds_bucket')).toBe('etcdgate_request_duration_seconds');
  });
});

describe('dashboard and alert rules query only exported metrics', () => {
  let exposition: Exposition;
  let known: Set<string>;
  let histogramFamilies: Set<string>;
  const dashboard: unknown = JSON.parse(readFileSync(dashboardPath, 'utf8'));

  beforeAll(async () => {
    const { metrics, registry } = createPromMetrics({ version: 'names-test' });
    exerciseEveryMetric(metrics);
    exposition = parseExposition(await registry.metrics());
    known = exposedNames(exposition);
    histogramFamilies = new Set(
      [...exposition.types].filter(([, type]) => type === 'histogram' || type === 'summary').map(([name]) => name),
    );
  });

  const unknownNames = (names: readonly string[]): string[] =>
    names.filter(
      (name) => !known.has(name) && !histogramFamilies.has(familyName(name)) && !PROMETHEUS_SYNTHETIC.has(name),
    );

  it('reads a dashboard object', () => {
    expect(isRecord(dashboard)).toBe(true);
  });

  it('uses only exported names in every dashboard expression and variable', () => {
    if (!isRecord(dashboard)) throw new Error('dashboard is not an object');
    const exprs = dashboardExprs(dashboard['panels']);
    expect(exprs.length).toBeGreaterThanOrEqual(15);
    const queries = variableQueries(dashboard);
    expect(queries.length).toBeGreaterThan(0);
    for (const expr of exprs) {
      const names = metricNamesInPromQL(expr);
      expect(names.length, `no metric in: ${expr}`).toBeGreaterThan(0);
      expect(unknownNames(names), expr).toEqual([]);
    }
    for (const query of queries) {
      const names = metricNamesInVariableQuery(query);
      expect(names.length, `no metric in: ${query}`).toBeGreaterThan(0);
      expect(unknownNames(names), query).toEqual([]);
    }
  });

  it('uses only exported names (or Prometheus\'s own `up`) in every alert rule', () => {
    const rules = ruleExprs();
    expect(rules.length).toBeGreaterThanOrEqual(9);
    for (const { alert, expr } of rules) {
      const names = metricNamesInPromQL(expr);
      expect(names.length, alert).toBeGreaterThan(0);
      expect(unknownNames(names), `${alert}: ${expr}`).toEqual([]);
    }
  });

  it('flags a misspelled name', () => {
    expect(unknownNames(metricNamesInPromQL('rate(etcdgate_request_total[5m])'))).toEqual(['etcdgate_request_total']);
  });

  it('covers traffic, latency, denials, upstream, streams, audit, certificates and backups', () => {
    if (!isRecord(dashboard)) throw new Error('dashboard is not an object');
    const used = new Set(dashboardExprs(dashboard['panels']).flatMap((expr) => metricNamesInPromQL(expr)));
    for (const name of [
      'etcdgate_requests_total',
      'etcdgate_request_duration_seconds_bucket',
      'etcdgate_denials_total',
      'etcdgate_upstream_up',
      'etcdgate_streams',
      'etcdgate_watchers',
      'etcdgate_client_connections',
      'etcdgate_audit_records_total',
      'etcdgate_audit_sink_failures_total',
      'etcdgate_certificate_not_after_seconds',
      'etcdgate_backup_last_success_timestamp_seconds',
      'etcdgate_backup_max_age_seconds',
      'etcdgate_backup_failures_total',
      'etcdgate_backup_runs_total',
    ]) {
      expect(used.has(name), name).toBe(true);
    }
  });
});

describe('dashboard is an importable template', () => {
  const dashboard: unknown = JSON.parse(readFileSync(dashboardPath, 'utf8'));

  it('declares a DS_PROMETHEUS input that every panel and variable uses', () => {
    if (!isRecord(dashboard)) throw new Error('dashboard is not an object');
    expect(dashboard['schemaVersion']).toBe(39);
    expect(dashboard['__inputs']).toEqual([expect.objectContaining({ name: 'DS_PROMETHEUS', type: 'datasource', pluginId: 'prometheus' })]);
    const panels = Array.isArray(dashboard['panels']) ? dashboard['panels'] : [];
    const ids = new Set<unknown>();
    for (const panel of panels) {
      if (!isRecord(panel)) throw new Error('panel is not an object');
      expect(ids.has(panel['id']), `duplicate panel id ${String(panel['id'])}`).toBe(false);
      ids.add(panel['id']);
      const grid = panel['gridPos'];
      expect(isRecord(grid) && Number(grid['x']) + Number(grid['w']) <= 24, String(panel['title'])).toBe(true);
      if (panel['type'] === 'row') continue;
      expect(panel['datasource'], String(panel['title'])).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      const targets = Array.isArray(panel['targets']) ? panel['targets'] : [];
      expect(targets.length, String(panel['title'])).toBeGreaterThan(0);
    }
    const templating = dashboard['templating'];
    const list = isRecord(templating) && Array.isArray(templating['list']) ? templating['list'] : [];
    for (const variable of list) {
      if (isRecord(variable) && variable['type'] === 'query') {
        expect(variable['datasource']).toEqual({ type: 'prometheus', uid: '${DS_PROMETHEUS}' });
      }
    }
  });
});
