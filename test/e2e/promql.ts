/**
 * The metric names a PromQL expression reads: what is left once strings, label matchers, grouping
 * and matching clauses, range and subquery brackets, numbers, keywords and function calls are taken
 * out. Enough for the rules and dashboard queries of this project (and Grafana's `$variables`), not a
 * full PromQL parser.
 */
const KEYWORDS = new Set(["by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset", "inf", "nan", "atan2"]);

export function metricNamesOf(expr: string): string[] {
  let s = expr
    .replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""')
    .replace(/#[^\n]*/g, " ")
    .replace(/\{[^{}]*\}/g, " ")
    .replace(/\[[^\]]*\]/g, " ")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, " ")
    .replace(/\$\{?[\w:]+\}?/g, " ");
  // Numbers (1e3, 0x1f, 1.5) and durations after `offset` are not names.
  s = s.replace(/(^|[^\w:.])(\d[\w.]*)/g, "$1 ");
  const names = new Set<string>();
  for (const m of s.matchAll(/(?<![\w:.])([a-zA-Z_:][\w:]*)(\s*\()?/g)) {
    const [, name, call] = m as unknown as [string, string, string | undefined];
    if (call || KEYWORDS.has(name.toLowerCase())) continue;
    names.add(name);
  }
  return [...names];
}
