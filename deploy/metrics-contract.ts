/**
 * The metric contract between `reluwatch consume` (the exporter) and the
 * observability kit (rules, alerts, dashboards). Everything under deploy/ is
 * built against this list; the exporter's own tests can diff their /metrics
 * against it, and docs/metrics.md describes the same names in prose.
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
    help: "Units of the layer in each state.",
  },
  {
    name: "reluwatch_layer_dead_ratio",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Fraction of the layer's units judged dead.",
  },
  {
    name: "reluwatch_unit_transitions_total",
    type: "counter",
    labels: ["run", "layer", "from", "to"],
    help: "Unit state changes since the layer was first seen.",
  },
  {
    name: "reluwatch_layer_born_dead_units",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Units that were dead at their first verdict.",
  },
  {
    name: "reluwatch_layer_constant_units",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Living units whose output barely varies.",
  },
  {
    name: "reluwatch_layer_units_by_firing_rate",
    type: "gauge",
    labels: ["run", "layer", "le"],
    help: "Cumulative count of units whose firing rate is <= le.",
  },
  {
    name: "reluwatch_layer_step",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Latest training step seen for the layer.",
  },
  {
    name: "reluwatch_layer_window_samples",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Samples in the layer's rolling window.",
  },
  {
    name: "reluwatch_layer_stale_ranks",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Ranks that stopped reporting for the layer.",
  },
  {
    name: "reluwatch_layer_nonfinite_values_total",
    type: "counter",
    labels: ["run", "layer"],
    help: "NaN or infinite activation values reported for the layer.",
  },
  {
    name: "reluwatch_layer_dormancy_mean",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Mean dormancy score of the layer's units (when abs_sum is sent).",
  },
  {
    name: "reluwatch_layer_last_snapshot_timestamp_seconds",
    type: "gauge",
    labels: ["run", "layer"],
    help: "Wall-clock time of the latest applied snapshot for the layer, in Unix seconds.",
  },
  {
    name: "reluwatch_snapshots_total",
    type: "counter",
    labels: ["result"],
    help: "Snapshots consumed, by result.",
  },
  {
    name: "reluwatch_invalid_snapshots_total",
    type: "counter",
    labels: ["reason"],
    help: "Snapshots rejected as invalid, by reason.",
  },
  {
    name: "reluwatch_snapshot_age_seconds",
    type: "histogram",
    labels: [],
    help: "Processing time minus snapshot time.",
  },
  {
    name: "reluwatch_consumer_lag_messages",
    type: "gauge",
    labels: ["topic", "partition"],
    help: "Messages between the committed offset and the partition's end.",
  },
  {
    name: "reluwatch_tracked_units",
    type: "gauge",
    labels: [],
    help: "Units held in memory across all layers.",
  },
  {
    name: "reluwatch_restoring",
    type: "gauge",
    labels: [],
    help: "1 while the instance rebuilds windows after a partition assignment.",
  },
  {
    name: "reluwatch_unit_firing_rate",
    type: "gauge",
    labels: ["run", "layer", "unit"],
    help: "Firing rate of the units closest to death (capped; overflow folded into one series).",
    optIn: true,
  },
];

/**
 * Series the exporter must expose at 0 as soon as a layer is first seen, not
 * only after the first increment: Prometheus' increase() cannot see the jump
 * of a counter whose first scraped value is already non-zero, so a layer whose
 * units all die before the first death series exists would never alert.
 */
export const ZERO_INITIALISED_SERIES: readonly { name: string; labels: Record<string, string> }[] = [
  { name: "reluwatch_unit_transitions_total", labels: { to: "dead" } },
  { name: "reluwatch_layer_nonfinite_values_total", labels: {} },
];

export function metricByName(name: string): MetricContract {
  const found = METRICS.find((m) => m.name === name);
  if (!found) throw new Error(`metric ${name} is not part of the reluwatch metric contract`);
  return found;
}
