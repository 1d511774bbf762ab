/**
 * The metric contract between `reluwatch consume` (the exporter,
 * src/sink/prometheus.ts) and the observability kit (rules, alerts,
 * dashboards). Everything under deploy/ is built against this list;
 * test/unit/sink/exporter-metrics.test.ts fails when a real Exporter's /metrics
 * differs from it (names, types, labels, help) or from docs/metrics.md.
 */

export type MetricType = "counter" | "gauge" | "histogram";

export interface MetricContract {
  /** Full name as exposed (for a histogram: the base name without _bucket/_sum/_count). */
  name: string;
  type: MetricType;
  labels: readonly string[];
  help: string;
  /** Only exposed when the operator turns it on. */
  optIn?: boolean;
}

/** Lower-case unit states, as they appear in the `state`, `from` and `to` labels. */
export const UNIT_STATES = ["unknown", "active", "mostly_silent", "dead"] as const;
export type UnitState = (typeof UNIT_STATES)[number];

/** Values of reluwatch_snapshots_total{result}. */
export const SNAPSHOT_RESULTS = ["ok", "duplicate", "late", "invalid", "over_limit"] as const;

/** The exporter's HTTP surface. */
export const EXPORTER_PORT = 9464;
export const EXPORTER_PATHS = { metrics: "/metrics", liveness: "/healthz", readiness: "/readyz" } as const;

export const METRICS: readonly MetricContract[] = [
  {
    name: "reluwatch_layer_units",
    type: "gauge",
    labels: ["run", "layer", "state"],
    help: "Units of a layer in each state (unknown, active, mostly_silent, dead).",
  },
  {
    name: "reluwatch_layer_dead_ratio",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Share of a layer's units that are dead (0..1).",
  },
  {
    name: "reluwatch_layer_born_dead_units",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Units whose first verdict was dead and that were never seen firing: an initialisation problem.",
  },
  {
    name: "reluwatch_layer_constant_units",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Living units whose activation barely varies over the window (no information about the input).",
  },
  {
    name: "reluwatch_layer_step",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Newest training step seen for the layer.",
  },
  {
    name: "reluwatch_layer_window_samples",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Samples (inputs) in the layer's rolling window, summed over ranks.",
  },
  {
    name: "reluwatch_layer_stale_ranks",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Ranks that stopped reporting while the others advance; verdicts lack their inputs.",
  },
  {
    name: "reluwatch_layer_dormancy_mean",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Mean ReDo dormancy score of the layer's units (unit mean |activation| / layer mean); only when abs_sum is sent.",
  },
  {
    name: "reluwatch_layer_last_snapshot_timestamp_seconds",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Wall time the newest snapshot of the layer was applied (Unix seconds).",
  },
  {
    name: "reluwatch_layer_nonfinite_values_total",
    type: "counter",
    labels: ["run", "layer"],
    help: "NaN or infinite values seen in the layer: raw activations, FiringCounts nonfinite counts, and abs_sum/sq_sum entries (those snapshots keep their fires).",
  },
  {
    name: "reluwatch_layer_checkpoint_resumes_total",
    type: "counter",
    labels: ["run", "layer"],
    help: "Times the layer was resumed from a checkpoint (a newer incarnation at an earlier step, or without incarnations an earlier step at a later time); the window was cut back.",
  },
  {
    name: "reluwatch_layer_resets_total",
    type: "counter",
    labels: ["run", "layer"],
    help: "Times the layer's state was reset because its layer_units changed mid-run.",
  },
  {
    name: "reluwatch_unit_transitions_total",
    type: "counter",
    labels: ["run", "layer", "from", "to"],
    help: "Units that changed state, by from and to state (to=dead is a death; from=dead a revival).",
  },
  {
    name: "reluwatch_layer_units_by_firing_rate",
    type: "gauge",
    labels: ["run", "layer", "rate_le"],
    help: "Units of a layer whose windowed firing rate is <= rate_le (cumulative), for heatmaps of the distribution.",
  },
  {
    name: "reluwatch_unit_firing_rate",
    type: "gauge",
    labels: ["run", "layer", "unit"],
    help: 'Windowed firing rate of the living units closest to death (opt-in); past the cap, unit="other" holds the lowest folded rate per layer.',
    optIn: true,
  },
  {
    name: "reluwatch_explorer_info",
    type: "gauge",
    labels: ["url"],
    help: "1, labelled with the external_url this instance's unit explorer is reached at; alert annotations link through it.",
    optIn: true,
  },
  {
    name: "reluwatch_tracked_units",
    type: "gauge",
    labels: [],
    help: "Units whose windows this instance keeps, over all runs and layers.",
  },
  {
    name: "reluwatch_snapshots_total",
    type: "counter",
    labels: ["result"],
    help: "Snapshots processed, by result: ok, duplicate (already applied), late (older than the window), invalid, over_limit.",
  },
  {
    name: "reluwatch_invalid_snapshots_total",
    type: "counter",
    labels: ["reason"],
    help: "Snapshots dead-lettered, by reason (an error code of docs/errors.md or a limit).",
  },
  {
    name: "reluwatch_snapshot_age_seconds",
    type: "histogram",
    labels: [],
    help: "Processing time minus the snapshot's time: how far behind training the verdicts are.",
  },
  {
    name: "reluwatch_consumer_lag_messages",
    type: "gauge",
    labels: ["topic", "partition"],
    help: "Messages between the partition's high watermark and the consumer's position.",
  },
  {
    name: "reluwatch_restoring",
    type: "gauge",
    labels: [],
    help: "1 while the instance rebuilds windows of newly assigned partitions (not ready), else 0.",
  },
  {
    name: "reluwatch_commit_failures_total",
    type: "counter",
    labels: ["guarantee"],
    help: "Commits (effects, state, offsets) that failed, by processing_guarantee; each plans its partitions again from the state topic.",
  },
];

/**
 * Series the exporter must expose at 0 as soon as a layer is first seen, not
 * only after the first increment: Prometheus' increase() cannot see the jump
 * of a counter whose first scraped value is already non-zero, so a layer whose
 * units all die before the first death series exists would never alert.
 */
export const ZERO_INITIALISED_SERIES: readonly { name: string; labels: Record<string, string> }[] = [
  { name: "reluwatch_unit_transitions_total", labels: { from: "unknown", to: "dead" } },
  { name: "reluwatch_unit_transitions_total", labels: { from: "active", to: "dead" } },
  { name: "reluwatch_unit_transitions_total", labels: { from: "mostly_silent", to: "dead" } },
  { name: "reluwatch_layer_nonfinite_values_total", labels: {} },
  { name: "reluwatch_layer_checkpoint_resumes_total", labels: {} },
  { name: "reluwatch_layer_resets_total", labels: {} },
];

export function metricByName(name: string): MetricContract {
  const found = METRICS.find((m) => m.name === name);
  if (!found) throw new Error(`metric ${name} is not part of the reluwatch metric contract`);
  return found;
}
