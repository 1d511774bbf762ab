import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parse } from "yaml";
import { DASHBOARDS, generatedDashboardFiles } from "../../../deploy/grafana/dashboards.js";
import {
  dashboardQueries,
  substituteVariables,
  UnresolvedVariableError,
  variableQueries,
} from "../../../deploy/grafana/queries.js";
import { METRICS } from "../../../deploy/metrics-contract.js";
import { buildRules, EXPLORER_OWNER_QUERY } from "../../../deploy/prometheus/rules.js";
import { knownSeries, repoFile, seriesNames } from "../../support/deploy-files.js";

interface PanelJson {
  id?: number;
  type: string;
  title: string;
  repeat?: string;
  targets?: { expr: string; format?: string; datasource?: { uid: string } }[];
}
interface DashboardJson {
  uid: string;
  title: string;
  panels: PanelJson[];
  templating: { list: { name: string; type: string }[] };
}

function committed(path: string): DashboardJson {
  return JSON.parse(repoFile(path)) as DashboardJson;
}

const OVERVIEW = "deploy/grafana/dashboards/reluwatch-overview.json";
const LAYER = "deploy/grafana/dashboards/reluwatch-layer.json";
const PIPELINE = "deploy/grafana/dashboards/reluwatch-pipeline.json";

describe("Grafana dashboards", () => {
  it("committed JSON is what deploy/grafana/dashboards.ts renders (run `make dashboards`)", () => {
    const files = generatedDashboardFiles();
    assert.deepEqual(Object.keys(files).sort(), [LAYER, OVERVIEW, PIPELINE]);
    for (const [path, content] of Object.entries(files)) {
      assert.equal(repoFile(path), content, `${path} is stale: run \`make dashboards\``);
    }
  });

  it("every panel has a title, an id and Prometheus queries through the datasource variable", () => {
    const uids = new Set<string>();
    for (const path of Object.keys(DASHBOARDS)) {
      const d = committed(path);
      assert.ok(!uids.has(d.uid), `duplicate uid ${d.uid}`);
      uids.add(d.uid);
      const ids = d.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, `${path}: panel ids unique`);
      for (const p of d.panels.filter((x) => x.type !== "row")) {
        assert.ok(p.title, `${path}: untitled panel`);
        assert.ok((p.targets ?? []).length > 0, `${path} / ${p.title}: no query`);
        // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable reference.
        for (const t of p.targets!) assert.equal(t.datasource?.uid, "${datasource}");
      }
    }
  });

  it("Overview ranks layers, plots deaths, stacks states per layer and lists firing alerts", () => {
    const d = committed(OVERVIEW);
    const byTitle = new Map(d.panels.map((p) => [p.title, p]));
    assert.match(byTitle.get("Layers ranked by dead ratio")!.targets![0]!.expr, /^sort_desc\(.*dead_ratio/);
    assert.match(byTitle.get("Deaths over time")!.targets![0]!.expr, /to="dead"/);
    assert.match(byTitle.get("Firing alerts")!.targets![0]!.expr, /^ALERTS\{alertstate="firing"/);
    const states = d.panels.find((p) => p.repeat === "layer");
    assert.ok(states, "a panel repeated per layer");
    assert.match(states.targets![0]!.expr, /state/);
  });

  it("Layer has run and layer variables and a heatmap of the firing-rate buckets", () => {
    const d = committed(LAYER);
    assert.deepEqual(
      d.templating.list.map((v) => v.name),
      ["datasource", "run", "layer", "explorer"],
    );
    // The links open the chosen layer in the unit explorer at the URL typed into "explorer".
    const links = JSON.stringify(d);
    assert.match(
      links,
      /"url":"\$\{explorer\}\/ui\/layer\?run=\$\{run:percentencode\}&layer=\$\{layer:percentencode\}"/,
    );
    assert.match(links, /"url":"\$\{explorer\}\/ui\/unit\?run=[^"]*&unit=\$\{__data\.fields\.unit\}"/);
    const heatmap = d.panels.find((p) => p.type === "heatmap");
    assert.ok(heatmap);
    assert.equal(heatmap.targets![0]!.format, "heatmap");
    assert.match(
      heatmap.targets![0]!.expr,
      /reluwatch_layer_units_by_firing_rate\{run="\$run", layer="\$layer"\}/,
    );
    const titles = d.panels.map((p) => p.title);
    for (const t of ["Units per state", "Samples in window", "Stale ranks", "Dormancy (mean)"]) {
      assert.ok(titles.includes(t), `missing panel ${t}`);
    }
  });

  it("Pipeline health shows lag, snapshot age, throughput, invalid snapshots and restoring", () => {
    const exprs = committed(PIPELINE).panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
    for (const needle of [
      "reluwatch_consumer_lag_messages",
      "reluwatch_snapshot_age_seconds",
      "result:reluwatch_snapshots:rate",
      "reason:reluwatch_invalid_snapshots:rate",
      "reluwatch_restoring",
    ]) {
      assert.ok(
        exprs.some((e) => e.includes(needle)),
        `no panel reads ${needle}`,
      );
    }
  });

  it("every series a panel reads exists, and every contract metric is used by a panel or a rule", () => {
    const known = knownSeries();
    const used = new Set<string>();
    for (const q of dashboardQueries({ run: "r", layer: "l" })) {
      for (const name of seriesNames(q.expr)) {
        assert.ok(known.has(name), `${q.dashboard} / ${q.panel} reads ${name}, which nothing exports`);
        used.add(name);
      }
    }
    for (const rule of buildRules().groups.flatMap((g) => g.rules)) {
      for (const name of seriesNames(rule.expr)) used.add(name);
    }
    // The layer alerts' explorer_url annotation queries Prometheus too.
    for (const name of seriesNames(EXPLORER_OWNER_QUERY)) {
      assert.ok(known.has(name), `the explorer_url annotation reads ${name}, which nothing exports`);
      used.add(name);
    }
    for (const m of METRICS) {
      const names = m.type === "histogram" ? [`${m.name}_bucket`] : [m.name];
      assert.ok(
        names.some((n) => used.has(n)),
        `${m.name} is in the contract but no panel or rule reads it`,
      );
    }
  });

  it("dashboardQueries substitutes every variable and escapes label values", () => {
    const queries = dashboardQueries({ run: 'a"b', layer: "fc1", rateInterval: "2m" });
    assert.ok(queries.length > 20);
    // A `$` may remain only as a label_replace capture reference ("$1").
    for (const q of queries) assert.doesNotMatch(q.expr, /\$(?!\d)/, q.expr);
    const transitions = queries.find((q) => q.panel === "Transitions")!;
    assert.equal(
      transitions.expr,
      'sum by (from, to) (increase(reluwatch_unit_transitions_total{run="a\\"b", layer="fc1"}[2m]))',
    );
    assert.deepEqual(
      queries.filter((q) => q.optIn).map((q) => q.panel),
      ["Units closest to death"],
    );
    assert.throws(
      () => substituteVariables('up{job="$job"}', { run: "r", layer: "l" }),
      UnresolvedVariableError,
    );
  });

  it("variableQueries turns label_values() into PromQL with the other variables substituted", () => {
    const layerVars = variableQueries({ run: "r9", layer: "l" }).filter((q) =>
      q.dashboard.endsWith("layer.json"),
    );
    assert.deepEqual(
      layerVars.map((q) => q.expr),
      ["count by (run) (reluwatch_layer_units)", 'count by (layer) (reluwatch_layer_units{run="r9"})'],
    );
  });

  it("provisioning points Grafana at the Prometheus data source and the dashboards folder", () => {
    const ds = parse(repoFile("deploy/grafana/provisioning/datasources/prometheus.yml")) as {
      datasources: { type: string; uid: string; url: string }[];
    };
    assert.equal(ds.datasources[0]!.type, "prometheus");
    assert.match(ds.datasources[0]!.url, /^http:\/\/prometheus:9090$/);
    const dash = parse(repoFile("deploy/grafana/provisioning/dashboards/reluwatch.yml")) as {
      providers: { type: string; options: { path: string } }[];
    };
    assert.equal(dash.providers[0]!.type, "file");
    assert.equal(dash.providers[0]!.options.path, "/var/lib/grafana/dashboards/reluwatch");
  });
});
