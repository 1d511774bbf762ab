/**
 * Writes the generated deployment artefacts: `rules` (the Prometheus rule file
 * and the Kubernetes PrometheusRule), `dashboards` (Grafana JSON and the list
 * of panel queries), or `all`. The tests compare these files with what the
 * sources render, so committed output never goes stale unnoticed.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { packageRoot } from "../src/paths.js";
import { generatedRuleFiles } from "./generated-rules.js";
import { generatedDashboardFiles } from "./grafana/dashboards.js";

const what = process.argv[2] ?? "all";
if (!["rules", "dashboards", "all"].includes(what)) {
  console.error(`usage: generate.ts rules|dashboards|all (got ${what})`);
  process.exit(2);
}
const files = {
  ...(what !== "dashboards" ? generatedRuleFiles() : {}),
  ...(what !== "rules" ? generatedDashboardFiles() : {}),
};
for (const [path, content] of Object.entries(files)) {
  writeFileSync(join(packageRoot, path), content);
  console.log(`wrote ${path}`);
}
