/**
 * The shipped Prometheus alert rules and Grafana dashboard: every expression parses as PromQL,
 * and every metric it names is exposed by a real server's /metrics (so a rename cannot leave an
 * alert silently watching nothing).
 */
import { readFileSync } from 'node:fs';
import { parser } from '@prometheus-io/lezer-promql';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { startTestServer } from '../server.js';
import { metricTypes } from './metrics-text.js';

const DOCS = new URL('../../../../docs/observability/', import.meta.url);

/** Metrics Prometheus makes itself, not the server. */
const PROMETHEUS_OWN = new Set(['up']);

interface Rule {
  alert?: string;
  expr?: unknown;
  for?: unknown;
  labels?: { severity?: unknown };
  annotations?: { summary?: unknown };
}

function alertRules(): Rule[] {
  const doc = parseYaml(readFileSync(new URL('alerts.yml', DOCS), 'utf8')) as {
    groups: { name: string; rules: Rule[] }[];
  };
  return doc.groups.flatMap((g) => g.rules);
}

interface Panel {
  title: string;
  targets?: { expr: string }[];
}

function dashboardExpressions(): { where: string; expr: string }[] {
  const doc = JSON.parse(readFileSync(new URL('grafana-dashboard.json', DOCS), 'utf8')) as {
    panels: Panel[];
  };
  return doc.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ where: `panel "${p.title}"`, expr: t.expr })),
  );
}

/** Parses `expr`; returns the syntax errors' positions and the metric names it selects. */
function promql(expr: string): { errors: number[]; metrics: string[] } {
  const tree = parser.parse(expr);
  const errors: number[] = [];
  const metrics: string[] = [];
  tree.iterate({
    enter(node) {
      if (node.type.isError) errors.push(node.from);
      if (node.name === 'VectorSelector') {
        const id = node.node.getChild('Identifier');
        if (id) metrics.push(expr.slice(id.from, id.to));
      }
    },
  });
  return { errors, metrics };
}

/** `foo_bucket` of a histogram is `foo`'s; everything else must be a family itself. */
function exposed(types: Map<string, string>, name: string): boolean {
  if (types.has(name)) return true;
  const base = name.replace(/_(bucket|sum|count)$/, '');
  return base !== name && ['histogram', 'summary'].includes(types.get(base) ?? '');
}

describe('alert rules and dashboard', () => {
  const rules = alertRules();
  const expressions = [
    ...rules.map((r) => ({ where: `alert ${r.alert}`, expr: String(r.expr) })),
    ...dashboardExpressions(),
  ];

  it('the validator itself: a broken expression has errors, a metric name is found', () => {
    expect(promql('sum(rate(tether_x_total[5m]) >').errors.length).toBeGreaterThan(0);
    expect(promql('max by (a) (tether_y{a="b"}) / tether_z').metrics).toEqual([
      'tether_y',
      'tether_z',
    ]);
  });

  it('every alert has a name, an expression, a for:, a severity and a summary', () => {
    expect(rules.length).toBeGreaterThanOrEqual(6);
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^Tether[A-Za-z]+$/);
      expect(typeof r.expr, String(r.alert)).toBe('string');
      expect(String(r.for), String(r.alert)).toMatch(/^\d+[smh]$/);
      expect(['page', 'warn'], String(r.alert)).toContain(r.labels?.severity);
      expect(typeof r.annotations?.summary, String(r.alert)).toBe('string');
    }
    // What an operator pages on.
    const names = rules.map((r) => r.alert);
    for (const wanted of [
      'TetherNodesFlapping',
      'TetherNodesMassOffline',
      'TetherFeedLagging',
      'TetherSweepStalled',
      'TetherDatabaseUnavailable',
    ]) {
      expect(names).toContain(wanted);
    }
  });

  it('every expression parses as PromQL and names only metrics a real server exposes', async () => {
    await using server = await startTestServer();
    const text = await (await fetch(`${server.url}/metrics`)).text();
    const types = metricTypes(text);
    expect(types.size).toBeGreaterThan(20);
    expect(expressions.length).toBeGreaterThan(20);
    for (const { where, expr } of expressions) {
      const parsed = promql(expr);
      expect(parsed.errors, `${where}: ${expr}`).toEqual([]);
      expect(parsed.metrics.length, `${where} names no metric`).toBeGreaterThan(0);
      for (const name of parsed.metrics) {
        if (PROMETHEUS_OWN.has(name)) continue;
        expect(exposed(types, name), `${where} uses ${name}, which /metrics does not expose`).toBe(
          true,
        );
      }
    }
  });
});
