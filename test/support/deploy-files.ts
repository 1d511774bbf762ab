/** Helpers the deployment tests share: reading repository files and PromQL names. */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { METRICS } from "../../deploy/metrics-contract.js";
import { RECORDED } from "../../deploy/prometheus/rules.js";
import { packageRoot } from "../../src/paths.js";

/** promtool, amtool and kustomize, each with a deadline. */
export { runFile as run } from "./child.js";

export function repoFile(path: string): string {
  return readFileSync(join(packageRoot, path), "utf8");
}

const PROMQL_KEYWORDS = new Set([
  "by",
  "without",
  "on",
  "ignoring",
  "group_left",
  "group_right",
  "and",
  "or",
  "unless",
  "offset",
  "bool",
]);

/**
 * Series names an expression reads: identifiers followed by a selector, a range
 * or an operator, minus functions, keywords and label names inside braces or
 * grouping clauses. Good enough for the expressions this kit writes.
 */
export function seriesNames(expr: string): string[] {
  const withoutStrings = expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const withoutGroupings = withoutStrings
    .replace(/\{[^}]*\}/g, "{}")
    .replace(/\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)/g, "");
  const names = new Set<string>();
  for (const m of withoutGroupings.matchAll(
    /(?<![a-zA-Z0-9_:.$])[a-zA-Z_:][a-zA-Z0-9_:]*(?=\s*[^\s(a-zA-Z0-9_:]|\s*$)/g,
  )) {
    const name = m[0];
    if (PROMQL_KEYWORDS.has(name) || /^\d/.test(name)) continue;
    names.add(name);
  }
  return [...names];
}

/** Every series name the exporter or the recording rules provide. */
export function knownSeries(): Set<string> {
  const known = new Set<string>(Object.values(RECORDED));
  for (const m of METRICS) {
    if (m.type === "histogram") for (const s of ["_bucket", "_sum", "_count"]) known.add(m.name + s);
    else known.add(m.name);
  }
  // Prometheus' own series that panels may read.
  for (const s of ["ALERTS", "ALERTS_FOR_STATE", "up"]) known.add(s);
  return known;
}
