/**
 * reluwatch's Grafana dashboards as code. `make dashboards` renders them into
 * deploy/grafana/dashboards/*.json (provisioned into Grafana); a test fails when
 * the committed JSON differs from what this file renders.
 */
import {
  GraphDrawStyle,
  StackingConfigBuilder,
  StackingMode,
  VisibilityMode,
} from "@grafana/grafana-foundation-sdk/common";
import {
  type Dashboard,
  DashboardBuilder,
  DashboardCursorSync,
  DashboardLinkBuilder,
  DashboardLinkType,
  DatasourceVariableBuilder,
  QueryVariableBuilder,
  RowBuilder,
  TextBoxVariableBuilder,
  ThresholdsConfigBuilder,
  ThresholdsMode,
  VariableRefresh,
  VariableSort,
} from "@grafana/grafana-foundation-sdk/dashboard";
import {
  HeatmapColorOptionsBuilder,
  PanelBuilder as HeatmapPanel,
} from "@grafana/grafana-foundation-sdk/heatmap";
import { DataqueryBuilder, PromQueryFormat } from "@grafana/grafana-foundation-sdk/prometheus";
import { PanelBuilder as StatPanel } from "@grafana/grafana-foundation-sdk/stat";
import { PanelBuilder as TablePanel } from "@grafana/grafana-foundation-sdk/table";
import { PanelBuilder as TimeseriesPanel } from "@grafana/grafana-foundation-sdk/timeseries";
import { RECORDED, THRESHOLDS } from "../prometheus/rules.js";

// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, not a JavaScript placeholder.
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };

/** Selector for the layer chosen in the Layer dashboard's variables. */
const LAYER = 'run="$run", layer="$layer"';

/**
 * Where the unit explorer is reached: the external_url setting of reluwatch
 * consume, typed into the dashboard's "explorer" box (or provisioned as its
 * default). The layer dashboard's links open the chosen layer's page there.
 */
const EXPLORER_DEFAULT_URL = "http://localhost:9464";
// biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variables, not JavaScript placeholders.
const EXPLORER_LAYER_URL = "${explorer}/ui/layer?run=${run:percentencode}&layer=${layer:percentencode}";

function explorerVariable(): TextBoxVariableBuilder {
  return new TextBoxVariableBuilder("explorer")
    .label("Explorer URL")
    .description("reluwatch's external_url: the layer links open its unit explorer.")
    .defaultValue(EXPLORER_DEFAULT_URL)
    .current({ text: EXPLORER_DEFAULT_URL, value: EXPLORER_DEFAULT_URL });
}

function explorerLink(title: string, url = EXPLORER_LAYER_URL): DashboardLinkBuilder {
  return new DashboardLinkBuilder(title).type(DashboardLinkType.Link).url(url).targetBlank(true);
}

function prom(expr: string, legend = "", refId = "A"): DataqueryBuilder {
  return new DataqueryBuilder().datasource(DATASOURCE).expr(expr).legendFormat(legend).refId(refId);
}

function instant(expr: string, refId = "A"): DataqueryBuilder {
  return prom(expr, "", refId).instant().format(PromQueryFormat.Table);
}

function datasourceVariable(): DatasourceVariableBuilder {
  return new DatasourceVariableBuilder("datasource").label("Data source").type("prometheus");
}

function labelVariable(name: string, query: string, opts: { all: boolean }): QueryVariableBuilder {
  const v = new QueryVariableBuilder(name)
    .label(name)
    .datasource(DATASOURCE)
    .query(query)
    .definition(query)
    .refresh(VariableRefresh.OnTimeRangeChanged)
    .sort(VariableSort.AlphabeticalAsc);
  return opts.all ? v.multi(true).includeAll(true).allValue(".*") : v;
}

function deadRatioThresholds(): ThresholdsConfigBuilder {
  return new ThresholdsConfigBuilder().mode(ThresholdsMode.Absolute).steps([
    { value: null, color: "green" },
    { value: THRESHOLDS.deadRatioWarning, color: "orange" },
    { value: THRESHOLDS.deadRatioCritical, color: "red" },
  ]);
}

function base(uid: string, title: string, description: string): DashboardBuilder {
  return new DashboardBuilder(title)
    .uid(uid)
    .description(description)
    .tags(["reluwatch"])
    .editable()
    .tooltip(DashboardCursorSync.Crosshair)
    .refresh("30s")
    .time({ from: "now-3h", to: "now" })
    .timezone("browser");
}

export function overviewDashboard(): Dashboard {
  const runFilter = 'run=~"$run"';
  return base(
    "reluwatch-overview",
    "reluwatch / Overview",
    "Every run and layer watched for dying ReLU units.",
  )
    .withVariable(datasourceVariable())
    .withVariable(labelVariable("run", "label_values(reluwatch_layer_units, run)", { all: true }))
    .withVariable(
      labelVariable("layer", 'label_values(reluwatch_layer_units{run=~"$run"}, layer)', { all: true }),
    )
    .withPanel(
      new StatPanel()
        .title("Runs")
        .description("Runs with at least one layer tracked.")
        .withTarget(prom(`count(count by (run) (${RECORDED.layerUnits}{${runFilter}}))`))
        .height(4)
        .span(6),
    )
    .withPanel(
      new StatPanel()
        .title("Dead units")
        .description("Units judged dead, over every selected run.")
        .withTarget(prom(`sum(${RECORDED.layerUnitsByState}{${runFilter}, state="dead"})`))
        .height(4)
        .span(6),
    )
    .withPanel(
      new StatPanel()
        .title("Worst dead ratio")
        .withTarget(prom(`max(${RECORDED.deadRatio}{${runFilter}})`))
        .unit("percentunit")
        .thresholds(deadRatioThresholds())
        .height(4)
        .span(6),
    )
    .withPanel(
      new StatPanel()
        .title("Tracked units")
        .description("Units held in memory, summed over reluwatch instances.")
        .withTarget(prom("sum(reluwatch_tracked_units)"))
        .height(4)
        .span(6),
    )
    .withPanel(
      new TablePanel()
        .title("Layers ranked by dead ratio")
        .withTarget(instant(`sort_desc(${RECORDED.deadRatio}{${runFilter}})`))
        .unit("percentunit")
        .thresholds(deadRatioThresholds())
        .height(10)
        .span(12),
    )
    .withPanel(
      new TablePanel()
        .title("Firing alerts")
        .description("reluwatch alerts currently firing in this Prometheus.")
        .withTarget(instant('ALERTS{alertstate="firing", alertname=~"Relu.*"}'))
        .height(10)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Deaths over time")
        .description("Units that crossed into dead, per layer.")
        .withTarget(
          prom(
            `sum by (run, layer) (increase(reluwatch_unit_transitions_total{${runFilter}, to="dead"}[$__rate_interval]))`,
            "{{run}} / {{layer}}",
          ),
        )
        .drawStyle(GraphDrawStyle.Bars)
        .height(8)
        .span(24),
    )
    .withRow(new RowBuilder("States per layer"))
    .withPanel(
      new TimeseriesPanel()
        .title("$layer")
        .description("Units of the layer in each state, stacked.")
        .withTarget(prom(`${RECORDED.layerUnitsByState}{${runFilter}, layer=~"$layer"}`, "{{run}} {{state}}"))
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .fillOpacity(60)
        .repeat("layer")
        .maxPerRow(4)
        .height(8)
        .span(8),
    )
    .build();
}

export function layerDashboard(): Dashboard {
  return base(
    "reluwatch-layer",
    "reluwatch / Layer",
    "One layer of one run: firing-rate distribution, unit states, window and rank health.",
  )
    .withVariable(datasourceVariable())
    .withVariable(labelVariable("run", "label_values(reluwatch_layer_units, run)", { all: false }))
    .withVariable(
      labelVariable("layer", 'label_values(reluwatch_layer_units{run="$run"}, layer)', { all: false }),
    )
    .withVariable(explorerVariable())
    .link(explorerLink("Every unit of this layer in the unit explorer").tooltip("Opens the layer's map"))
    .withPanel(
      new StatPanel()
        .title("Dead ratio")
        .withTarget(prom(`${RECORDED.deadRatio}{${LAYER}}`))
        .dataLinks([explorerLink("Open the layer's units in the explorer")])
        .unit("percentunit")
        .thresholds(deadRatioThresholds())
        .height(4)
        .span(6),
    )
    .withPanel(
      new StatPanel()
        .title("Step")
        .description("Latest training step seen.")
        .withTarget(prom(`max(reluwatch_layer_step{${LAYER}})`))
        .height(4)
        .span(6),
    )
    .withPanel(
      new StatPanel()
        .title("Born dead")
        .description("Units dead at their first verdict: an initialisation problem.")
        .withTarget(prom(`max(reluwatch_layer_born_dead_units{${LAYER}})`))
        .height(4)
        .span(6),
    )
    .withPanel(
      new StatPanel()
        .title("Constant units")
        .description("Living units whose output barely varies.")
        .withTarget(prom(`max(reluwatch_layer_constant_units{${LAYER}})`))
        .height(4)
        .span(6),
    )
    .withPanel(
      new HeatmapPanel()
        .title("Firing-rate distribution")
        .description("Units per firing-rate bucket over time (from the cumulative rate_le buckets).")
        .withTarget(
          // Grafana's heatmap format reads bucket bounds from `le`; the exporter
          // names the label rate_le because `le` is reserved for histograms.
          prom(
            `label_replace(sum by (rate_le) (reluwatch_layer_units_by_firing_rate{${LAYER}}), "le", "$1", "rate_le", "(.*)")`,
            "{{le}}",
          ).format(PromQueryFormat.Heatmap),
        )
        .calculate(false)
        .color(new HeatmapColorOptionsBuilder().scheme("Oranges").steps(64))
        .showValue(VisibilityMode.Never)
        .height(10)
        .span(24),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Units per state")
        .withTarget(prom(`sum by (state) (reluwatch_layer_units{${LAYER}})`, "{{state}}"))
        .dataLinks([explorerLink("Open the layer's units in the explorer")])
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .fillOpacity(60)
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Transitions")
        .description("State changes per interval.")
        .withTarget(
          prom(
            `sum by (from, to) (increase(reluwatch_unit_transitions_total{${LAYER}}[$__rate_interval]))`,
            "{{from}} → {{to}}",
          ),
        )
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Samples in window")
        .withTarget(prom(`max(reluwatch_layer_window_samples{${LAYER}})`, "samples"))
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Stale ranks")
        .description("Ranks that stopped reporting this layer.")
        .withTarget(prom(`${RECORDED.staleRanks}{${LAYER}}`, "stale ranks"))
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Dormancy (mean)")
        .description("Present when the trainer sends abs_sum.")
        .withTarget(prom(`max(reluwatch_layer_dormancy_mean{${LAYER}})`, "dormancy"))
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Non-finite values")
        .withTarget(
          prom(
            `sum(increase(reluwatch_layer_nonfinite_values_total{${LAYER}}[$__rate_interval]))`,
            "NaN/Inf",
          ),
        )
        .height(8)
        .span(8),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Checkpoint resumes and resets")
        .description(
          "A resume cuts the window back to the resumed step; a reset (layer_units changed) starts the layer over. Either delays verdicts.",
        )
        .withTarget(
          prom(
            `sum(increase(reluwatch_layer_checkpoint_resumes_total{${LAYER}}[$__rate_interval]))`,
            "resumes",
          ),
        )
        .withTarget(
          prom(`sum(increase(reluwatch_layer_resets_total{${LAYER}}[$__rate_interval]))`, "resets", "B"),
        )
        .height(8)
        .span(8),
    )
    .withPanel(
      new TablePanel()
        .title("Units closest to death")
        .description("Needs the exporter's opt-in per-unit series; the HTTP API has every unit.")
        .withTarget(instant(`bottomk(20, reluwatch_unit_firing_rate{${LAYER}})`))
        .dataLinks([
          explorerLink(
            "Open this unit in the explorer",
            // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variables, not JavaScript placeholders.
            "${explorer}/ui/unit?run=${run:percentencode}&layer=${layer:percentencode}&unit=${__data.fields.unit}",
          ),
        ])
        .height(8)
        .span(8),
    )
    .build();
}

export function pipelineDashboard(): Dashboard {
  return base(
    "reluwatch-pipeline",
    "reluwatch / Pipeline health",
    "The consumer itself: lag, snapshot age, throughput, invalid input, restoring.",
  )
    .withVariable(datasourceVariable())
    .withPanel(
      new TimeseriesPanel()
        .title("Consumer lag")
        .withTarget(
          prom("sum by (topic, partition) (reluwatch_consumer_lag_messages)", "{{topic}}/{{partition}}"),
        )
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Snapshot age")
        .description("Processing time minus snapshot time.")
        .withTarget(prom(RECORDED.snapshotAgeP99, "p99"))
        .withTarget(
          prom(
            "histogram_quantile(0.5, sum by (le) (rate(reluwatch_snapshot_age_seconds_bucket[$__rate_interval])))",
            "p50",
            "B",
          ),
        )
        .unit("s")
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Throughput")
        .description("Snapshots consumed per second, by result.")
        .withTarget(prom(RECORDED.snapshotRate, "{{result}}"))
        .unit("ops")
        .stacking(new StackingConfigBuilder().mode(StackingMode.Normal))
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Invalid snapshots by reason")
        .withTarget(prom(RECORDED.invalidRate, "{{reason}}"))
        .unit("ops")
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Restoring")
        .description("1 while an instance rebuilds windows after a partition assignment (not ready).")
        .withTarget(prom("max by (instance) (reluwatch_restoring)", "{{instance}}"))
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Tracked units per instance")
        .withTarget(prom("sum by (instance) (reluwatch_tracked_units)", "{{instance}}"))
        .height(8)
        .span(12),
    )
    .withPanel(
      new TimeseriesPanel()
        .title("Failed commits")
        .description(
          "Commits (or transactions, under exactly_once) that failed per second; each restores its partitions from the state topic.",
        )
        .withTarget(
          prom(
            "sum by (instance, guarantee) (rate(reluwatch_commit_failures_total[5m]))",
            "{{instance}} {{guarantee}}",
          ),
        )
        .unit("ops")
        .height(8)
        .span(12),
    )
    .build();
}

export const DASHBOARDS = {
  "deploy/grafana/dashboards/reluwatch-overview.json": overviewDashboard,
  "deploy/grafana/dashboards/reluwatch-layer.json": layerDashboard,
  "deploy/grafana/dashboards/reluwatch-pipeline.json": pipelineDashboard,
} as const;

/** Stable panel ids, so links to a panel (viewPanel=N) survive regeneration. */
function numberPanels(dashboard: Dashboard): Dashboard {
  let next = 1;
  const walk = (panels: { id?: number; panels?: unknown[] }[]) => {
    for (const p of panels) {
      p.id = next++;
      if (p.panels) walk(p.panels as { id?: number }[]);
    }
  };
  walk((dashboard.panels ?? []) as { id?: number }[]);
  return dashboard;
}

/** The generated dashboard files, by path relative to the package root. */
export function generatedDashboardFiles(): Record<string, string> {
  return Object.fromEntries(
    Object.entries(DASHBOARDS).map(([path, build]) => [
      path,
      `${JSON.stringify(numberPanels(build()), null, 2)}\n`,
    ]),
  );
}
