/**
 * Pulls the metric names out of PromQL expressions (dashboard queries, alert rules) so
 * tests can check them against what etcdgate actually exports. It is a deliberately
 * small scanner, not a PromQL parser: it drops strings, label matchers, ranges,
 * grouping clauses and Grafana variables, then keeps the identifiers that are not
 * called as functions and are not keywords.
 */

const KEYWORDS = new Set(['and', 'or', 'unless', 'bool', 'by', 'without', 'on', 'ignoring', 'group_left', 'group_right', 'offset', 'inf', 'nan', 'atan2']);

/** The metric names an expression reads, in order of first appearance. */
export function metricNamesInPromQL(expr: string): string[] {
  const stripped = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/\$\{[^}]*\}|\$\w+/g, ' ')
    .replace(/\{[^}]*\}/g, ' ')
    .replace(/\[[^\]]*\]/g, ' ')
    .replace(/\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, ' ')
    .replace(/\boffset\s+-?\w+/g, ' ');
  const names: string[] = [];
  for (const token of stripped.matchAll(/\d+(?:\.\d+)?(?:e[+-]?\d+)?|[a-zA-Z_:][a-zA-Z0-9_:]*/gi)) {
    const word = token[0];
    if (/^\d/.test(word) || KEYWORDS.has(word.toLowerCase())) continue;
    const after = stripped.slice((token.index ?? 0) + word.length).trimStart();
    if (after.startsWith('(')) continue;
    if (!names.includes(word)) names.push(word);
  }
  return names;
}

/** The metric an `label_values(metric{...}, label)` or plain PromQL Grafana variable query reads. */
export function metricNamesInVariableQuery(query: string): string[] {
  const labelValues = /^\s*label_values\(\s*(.*),\s*[a-zA-Z_][a-zA-Z0-9_]*\s*\)\s*$/.exec(query);
  if (labelValues?.[1] !== undefined) return metricNamesInPromQL(labelValues[1]);
  const queryResult = /^\s*query_result\((.*)\)\s*$/.exec(query);
  return metricNamesInPromQL(queryResult?.[1] ?? query);
}

/** Histogram/summary series suffixes folded into their family name. */
export function familyName(name: string): string {
  return name.replace(/_(?:bucket|sum|count)$/, '');
}
